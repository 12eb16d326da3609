using System;
using System.IO;
using System.Linq;
using System.Security.Cryptography;
using NUnit.Framework;

namespace Pawl.Tests
{
    /// <summary>Multi-device from .NET: a desktop shows a link code, the phone links it,
    /// both of Alice's devices get Bob's message, an archived chat syncs, the phone
    /// unlinks it; a malformed code is a typed error.</summary>
    [TestFixture]
    public class LinkingTests : ClientTests
    {
        private const string Alice = "+4915100000081";
        private const string Bob = "+4915100000082";

        public LinkingTests() : base("linking") { }

        [Test]
        public void ADesktopIsLinkedByItsCode()
        {
            using (var phone = Open("phone.db"))
            using (var bob = Open("bob.db"))
            using (var desktop = Open("desktop.db"))
            using (var pEvents = new EventQueue(phone))
            using (var bEvents = new EventQueue(bob))
            using (var dEvents = new EventQueue(desktop))
            {
                Register(phone, Alice, pEvents);
                Register(bob, Bob, bEvents);
                phone.SendTextAsync(Bob, "before the desktop").Wait();
                bEvents.WaitFor<ClientEvent.MessageReceived>(Wait);
                using (var linking = desktop.StartLinkingAsync().Result)
                {
                    var code = linking.NextCodeAsync().Result;
                    StringAssert.StartsWith("pawl-link:1,", code.Code);
                    CollectionAssert.AreEqual(new byte[] { 0x89, 0x50, 0x4E, 0x47 }, code.QrPng.Take(4).ToArray());
                    CollectionAssert.AreEqual(desktop.IdentityKey, PawlLibrary.ParseLinkCode(code.Code));
                    Assert.AreEqual(2u, phone.LinkDeviceAsync(code.Code).Result);
                    Assert.AreEqual(2u, linking.FinishedAsync().Result);
                }
                desktop.Start();
                dEvents.WaitFor<ClientEvent.Connected>(Wait);
                Assert.AreEqual(2u, pEvents.WaitFor<ClientEvent.DeviceLinked>(Wait).DeviceId);
                var h = dEvents.WaitFor<ClientEvent.HistorySynced>(Wait);
                Assert.AreEqual(new uint[] { 1, 1, 1 }, new[] { h.ChunksDone, h.Chunks, h.Messages });
                CollectionAssert.AreEqual(new[] { "before the desktop" },
                    desktop.Messages(Bob, 10).Select(m => m.Text).ToArray());

                bob.SendTextAsync(Alice, "to both devices").Wait();
                foreach (var q in new[] { pEvents, dEvents })
                {
                    var m = q.WaitFor<ClientEvent.MessageReceived>(e => e.Message.Text == "to both devices", Wait).Message;
                    Assert.AreEqual(Bob, m.Sender);
                }

                desktop.SetArchivedAsync(Bob, true).Wait();
                Assert.IsTrue(phone.IsArchivedAsync(Bob).Result);
                phone.UnlinkDeviceAsync(2).Wait();

                Assert.AreEqual(ErrorCode.InvalidArgument,
                    Assert.Throws<PawlException>(() => PawlLibrary.ParseLinkCode("not a link code")).Code);
                var e2 = Assert.Throws<AggregateException>(() => phone.LinkDeviceAsync("pawl-link:1,AAAA").Wait());
                Assert.AreEqual(ErrorCode.InvalidArgument, ((PawlException)e2.InnerException).Code);
            }
        }
    }
}
