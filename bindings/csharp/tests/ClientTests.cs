using System;
using System.IO;
using System.Security.Cryptography;
using NUnit.Framework;

namespace Pawl.Tests
{
    /// <summary>What the client fixtures share: a pawl-relay process for the fixture, a
    /// folder of its for the clients' databases, and opening and registering clients.</summary>
    public abstract class ClientTests
    {
        protected static readonly TimeSpan Wait = TimeSpan.FromSeconds(20);
        private readonly string folder;
        internal Relay relay;
        protected string dir;

        protected ClientTests(string folder)
        {
            this.folder = folder;
        }

        [TestFixtureSetUp]
        public void StartRelay()
        {
            relay = new Relay();
            dir = Path.Combine(relay.Dir, folder);
            Directory.CreateDirectory(dir);
        }

        [TestFixtureTearDown]
        public void StopRelay()
        {
            if (relay != null) relay.Dispose();
        }

        protected static byte[] NewKey()
        {
            var key = new byte[32];
            using (var rng = RandomNumberGenerator.Create()) rng.GetBytes(key);
            return key;
        }

        protected PawlClient Open(string name, byte[] key)
        {
            return PawlClient.Open(Path.Combine(dir, name), key, relay.Url, relay.Pin);
        }

        /// <summary>Open with a fresh random database key.</summary>
        protected PawlClient Open(string name)
        {
            return Open(name, NewKey());
        }

        /// <summary>Register <paramref name="number"/> with the code the relay wrote.</summary>
        protected void Register(PawlClient c, string number)
        {
            c.RequestCodeAsync(number).Wait();
            c.VerifyCodeAsync(number, relay.CodeFor(number)).Wait();
        }

        /// <summary>Register, start, and wait until the prekeys are uploaded.</summary>
        protected void Register(PawlClient c, string number, EventQueue q)
        {
            Register(c, number);
            c.Start();
            q.WaitFor<ClientEvent.PreKeysUploaded>(Wait);
        }
    }
}
