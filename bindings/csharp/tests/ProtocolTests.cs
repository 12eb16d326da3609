using System;
using System.Linq;
using System.Text;
using NUnit.Framework;

namespace Pawl.Tests
{
    /// <summary>The low-level protocol API (bring your own transport) through the C ABI.</summary>
    [TestFixture]
    public class ProtocolTests
    {
        private static readonly byte[] Key = Enumerable.Repeat((byte)7, 32).ToArray();

        [Test]
        public void TwoDevicesTalkOverTheirOwnTransport()
        {
            using (var alice = PawlProtocol.Open(":memory:", Key))
            using (var bob = PawlProtocol.Open(":memory:", Key))
            {
                Assert.AreEqual(33, alice.IdentityKey.Length);
                Assert.AreNotEqual(alice.IdentityKey, bob.IdentityKey);
                var bundle = bob.PreKeyBundle(1, 42);
                Assert.AreEqual(42u, bundle.PreKeyId);
                Assert.AreEqual(33, bundle.PreKey.Length);
                Assert.AreEqual(64, bundle.SignedPreKeySignature.Length);
                Assert.AreEqual(bob.RegistrationId, bundle.RegistrationId);
                CollectionAssert.AreEqual(bob.IdentityKey, bundle.IdentityKey);
                Assert.IsFalse(alice.HasSession("bob", 1));
                alice.ProcessPreKeyBundle("bob", 1, bundle);
                Assert.IsTrue(alice.HasSession("bob", 1));

                var first = alice.Encrypt("bob", 1, Encoding.UTF8.GetBytes("hi bob"));
                Assert.AreEqual(3, first.MessageType);
                Assert.AreEqual("hi bob", Encoding.UTF8.GetString(bob.Decrypt("alice", 1, first)));
                // A replay is refused with its own code.
                var dup = Assert.Throws<PawlException>(() => bob.Decrypt("alice", 1, first));
                Assert.AreEqual(ErrorCode.DuplicateMessage, dup.Code);
                Assert.AreEqual(14u, dup.NumericCode);

                var reply = bob.Encrypt("alice", 1, Encoding.UTF8.GetBytes("hi alice"));
                Assert.AreEqual(2, reply.MessageType);
                // Tampered: a typed error, and the session still works afterwards.
                var body = (byte[])reply.Body.Clone();
                body[body.Length - 12] ^= 1;
                var bad = Assert.Throws<PawlException>(() => alice.Decrypt("bob", 1, new Ciphertext(2, body)));
                Assert.AreEqual(ErrorCode.Protocol, bad.Code);
                Assert.AreEqual("hi alice", Encoding.UTF8.GetString(alice.Decrypt("bob", 1, reply)));

                // Many in a row, both ways; empty and binary payloads.
                for (int i = 0; i < 20; i++)
                {
                    var payload = new byte[i * 13];
                    for (int j = 0; j < payload.Length; j++) payload[j] = (byte)(i + j);
                    CollectionAssert.AreEqual(payload, bob.Decrypt("alice", 1, alice.Encrypt("bob", 1, payload)));
                    CollectionAssert.AreEqual(payload, alice.Decrypt("bob", 1, bob.Encrypt("alice", 1, payload)));
                }
            }
        }

        [Test]
        public void BundleWithoutOneTimePreKey()
        {
            using (var alice = PawlProtocol.Open(":memory:", Key))
            using (var bob = PawlProtocol.Open(":memory:", Key))
            {
                var bundle = bob.PreKeyBundle(2);
                Assert.IsNull(bundle.PreKeyId);
                Assert.IsNull(bundle.PreKey);
                alice.ProcessPreKeyBundle("bob", 2, bundle);
                var c = alice.Encrypt("bob", 2, new byte[] { 1, 2, 3 });
                CollectionAssert.AreEqual(new byte[] { 1, 2, 3 }, bob.Decrypt("alice", 1, c));
            }
        }

        [Test]
        public void ProtocolErrorsAreTyped()
        {
            Assert.AreEqual(ErrorCode.InvalidArgument,
                Assert.Throws<PawlException>(() => PawlProtocol.Open(":memory:", new byte[5])).Code);
            using (var alice = PawlProtocol.Open(":memory:", Key))
            using (var bob = PawlProtocol.Open(":memory:", Key))
            {
                Assert.AreEqual(ErrorCode.NoSession,
                    Assert.Throws<PawlException>(() => alice.Encrypt("carol", 1, new byte[] { 1 })).Code);
                Assert.AreEqual(ErrorCode.InvalidArgument,
                    Assert.Throws<PawlException>(() => alice.Decrypt("bob", 1, new Ciphertext(9, new byte[0]))).Code);
                Assert.AreEqual(ErrorCode.Protocol,
                    Assert.Throws<PawlException>(() => alice.Decrypt("bob", 1, new Ciphertext(2, new byte[] { 0x33, 1, 2 }))).Code);
                // A bundle with a forged signature is refused and starts no session.
                var bundle = bob.PreKeyBundle(1, 1);
                bundle.SignedPreKeySignature[0] ^= 0x40;
                var e = Assert.Throws<PawlException>(() => alice.ProcessPreKeyBundle("bob", 1, bundle));
                Assert.AreEqual(ErrorCode.Protocol, e.Code);
                Assert.IsFalse(alice.HasSession("bob", 1));
                bundle.IdentityKey = new byte[3];
                Assert.AreEqual(ErrorCode.InvalidArgument,
                    Assert.Throws<PawlException>(() => alice.ProcessPreKeyBundle("bob", 1, bundle)).Code);
                Assert.Throws<ArgumentException>(() =>
                    alice.ProcessPreKeyBundle("bob", 1, new PreKeyBundle { PreKeyId = 1 }));
            }
        }

        [Test]
        public void LibraryHelpers()
        {
            StringAssert.IsMatch(@"^\d+\.\d+\.\d+", PawlLibrary.Version);
            // SHA-256 of 32 zero bytes, computed independently.
            using (var sha = System.Security.Cryptography.SHA256.Create())
            {
                var der = new byte[32];
                CollectionAssert.AreEqual(sha.ComputeHash(der), PawlLibrary.CertSha256(der));
            }
        }
    }
}
