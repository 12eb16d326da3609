using System;
using System.IO;
using System.Linq;
using System.Security.Cryptography;
using NUnit.Framework;

namespace Pawl.Tests
{
    /// <summary>The bindings scenario: two clients over a pawl-relay process on loopback
    /// register, exchange messages both ways, see delivered and read states, agree on the
    /// safety number, and get typed errors for bad input.</summary>
    [TestFixture]
    public class ScenarioTests : ClientTests
    {
        private const string Alice = "+4915100000071";
        private const string Bob = "+4915100000072";

        public ScenarioTests() : base("clients") { }

        [Test]
        public void TwoClientsChatThroughARelay()
        {
            var aliceKey = NewKey();
            using (var alice = Open("alice.db", aliceKey))
            using (var bob = Open("bob.db", NewKey()))
            using (var aEvents = new EventQueue(alice))
            using (var bEvents = new EventQueue(bob))
            {
                Assert.AreEqual(ErrorCode.NotRegistered,
                    Assert.Throws<PawlException>(() => { var unused = alice.Address; }).Code);
                Register(alice, Alice);
                Register(bob, Bob);
                Assert.AreEqual(new Address(Alice, 1), alice.Address);
                Assert.AreEqual(33, alice.IdentityKey.Length);
                alice.Start();
                bob.Start();
                foreach (var q in new[] { aEvents, bEvents })
                {
                    q.WaitFor<ClientEvent.Connected>(Wait);
                    Assert.That(q.WaitFor<ClientEvent.PreKeysUploaded>(Wait).Count, Is.GreaterThan(0));
                }
                Assert.IsTrue(alice.IsConnected);
                CollectionAssert.AreEquivalent(new[] { Bob },
                    alice.DiscoverAsync(new[] { Bob, "+4915100000079" }).Result);

                // Alice -> Bob: received, delivered.
                long mid = alice.SendTextAsync(Bob, "hello bob").Result;
                var got = bEvents.WaitFor<ClientEvent.MessageReceived>(Wait).Message;
                Assert.AreEqual("hello bob", got.Text);
                Assert.AreEqual(Alice, got.Sender);
                Assert.AreEqual(1u, got.SenderDevice);
                Assert.IsFalse(got.Outgoing);
                Assert.IsNotNull(got.ReceivedAt);
                aEvents.WaitFor<ClientEvent.Delivered>(d => d.MessageId == mid, Wait);
                Assert.That(alice.MessageStatus(mid),
                    Is.EqualTo(MessageStatus.Delivered).Or.EqualTo(MessageStatus.Read));

                // Bob reads: Alice sees the read receipt and the Read state.
                Assert.AreEqual(1u, bob.MarkReadAsync(Alice).Result);
                var read = aEvents.WaitFor<ClientEvent.Read>(r => r.MessageId == mid, Wait);
                Assert.AreEqual(new Address(Bob, 1), read.By);
                Assert.AreEqual(MessageStatus.Read, alice.MessageStatus(mid));

                // Bob -> Alice, with typing first.
                bob.SetTypingAsync(Alice, true).Wait();
                var typing = aEvents.WaitFor<ClientEvent.Typing>(Wait);
                Assert.IsTrue(typing.Started);
                Assert.AreEqual(Bob, typing.Peer.Name);
                long reply = bob.SendTextAsync(Alice, "hi alice, ünïcödé 🙂").Result;
                var back = aEvents.WaitFor<ClientEvent.MessageReceived>(Wait).Message;
                Assert.AreEqual("hi alice, ünïcödé 🙂", back.Text);
                bEvents.WaitFor<ClientEvent.Delivered>(d => d.MessageId == reply, Wait);

                // The store: the chat, newest first, and search.
                var chat = alice.Messages(Bob, 10);
                CollectionAssert.AreEqual(new[] { "hi alice, ünïcödé 🙂", "hello bob" }, chat.Select(m => m.Text).ToArray());
                CollectionAssert.AreEqual(new[] { false, true }, chat.Select(m => m.Outgoing).ToArray());
                var found = bob.Search("hello", 10);
                Assert.AreEqual(1, found.Length);
                Assert.AreEqual(got.Id, found[0].Id);

                // Safety numbers agree, and each side accepts the other's QR payload.
                var sa = alice.SafetyNumber(Bob);
                var sb = bob.SafetyNumber(Alice);
                Assert.AreEqual(60, sa.Digits.Length);
                Assert.IsTrue(sa.Digits.All(char.IsDigit));
                Assert.AreEqual(sa.Digits, sb.Digits);
                Assert.IsTrue(alice.CompareScanned(Bob, sb.Scannable));
                Assert.IsTrue(bob.CompareScanned(Alice, sa.Scannable));
                Assert.IsFalse(alice.CompareScanned(Bob, sa.Scannable), "its own code is not the peer's");
                CollectionAssert.AreEqual(new byte[] { 0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A },
                    sa.QrPng.Take(8).ToArray());
                StringAssert.Contains("<svg", sa.QrSvg);

                // Typed errors for bad input.
                var e = Assert.Throws<PawlException>(() => alice.CompareScanned(Bob, new byte[] { 1, 2, 3 }));
                Assert.AreEqual(ErrorCode.InvalidArgument, e.Code);
                Assert.AreEqual(1u, e.NumericCode);
                Assert.AreEqual(ErrorCode.InvalidArgument,
                    Assert.Throws<PawlException>(() => alice.MessageStatus(987654)).Code);
                Assert.AreEqual(ErrorCode.NoSession,
                    Assert.Throws<PawlException>(() => alice.SafetyNumber("+4915100000079")).Code);

                // An attachment: uploaded encrypted, sent as a media message, downloaded,
                // checked and decrypted by Bob into a file.
                var file = new byte[300000];
                for (int i = 0; i < file.Length; i++) file[i] = (byte)((i * 2654435761L) >> 13);
                var src = Path.Combine(dir, "picture.bin");
                File.WriteAllBytes(src, file);
                var att = alice.UploadAttachmentAsync(MediaKind.Image, src).Result;
                Assert.AreEqual(MediaKind.Image, att.Kind);
                Assert.AreEqual(300000UL, att.FileLength);
                Assert.AreEqual(32, att.MediaKey.Length);
                Assert.AreEqual(32, att.FileSha256.Length);
                using (var sha = System.Security.Cryptography.SHA256.Create())
                    CollectionAssert.AreEqual(sha.ComputeHash(file), att.FileSha256);
                var media = new MediaMessage
                {
                    Attachment = att, MimeType = "image/png", FileName = "picture.png",
                    Caption = "a picture", Thumbnail = new byte[] { 0x89, 0x50, 1, 2 }, Width = 640, Height = 480,
                };
                long mediaId = alice.SendMediaAsync(Bob, media).Result;
                var mm = bEvents.WaitFor<ClientEvent.MessageReceived>(r => r.Message.Media != null, Wait).Message;
                Assert.AreEqual("a picture", mm.Text);
                Assert.AreEqual("image/png", mm.Media.MimeType);
                Assert.AreEqual("picture.png", mm.Media.FileName);
                Assert.AreEqual(640u, mm.Media.Width);
                CollectionAssert.AreEqual(media.Thumbnail, mm.Media.Thumbnail);
                CollectionAssert.AreEqual(att.BlobId, mm.Media.Attachment.BlobId);
                CollectionAssert.AreEqual(att.MediaKey, mm.Media.Attachment.MediaKey);
                Assert.IsNotNull(bob.Messages(Alice, 1)[0].Media, "the store keeps the media description");
                Assert.IsNotNull(alice.Messages(Bob, 1)[0].Media);
                Assert.AreEqual(mediaId, alice.Messages(Bob, 1)[0].Id);
                var dst = Path.Combine(dir, "received.bin");
                bob.DownloadAttachmentAsync(mm.Media.Attachment, dst).Wait();
                CollectionAssert.AreEqual(file, File.ReadAllBytes(dst));
                // The wrong key: a typed error, and nothing at the path.
                var wrongKey = new Attachment
                {
                    Kind = att.Kind, BlobId = att.BlobId, MediaKey = new byte[32],
                    FileSha256 = att.FileSha256, FileEncSha256 = att.FileEncSha256, FileLength = att.FileLength,
                };
                var bad = Path.Combine(dir, "bad.bin");
                var ae = Assert.Throws<AggregateException>(() => bob.DownloadAttachmentAsync(wrongKey, bad).Wait());
                Assert.AreEqual(ErrorCode.Protocol, ((PawlException)ae.InnerException).Code);
                Assert.IsFalse(File.Exists(bad));
                Assert.IsFalse(File.Exists(bad + ".part"));

                alice.ShutdownAsync().Wait();
                Assert.IsFalse(alice.IsConnected);
            }

            // The same database with another key: WrongDatabaseKey; with its key it opens.
            var wrong = Assert.Throws<PawlException>(() => Open("alice.db", NewKey()));
            Assert.AreEqual(ErrorCode.WrongDatabaseKey, wrong.Code);
            Assert.AreEqual(2u, wrong.NumericCode);
            using (var again = Open("alice.db", aliceKey))
                Assert.AreEqual(3, again.Messages(Bob, 10).Length);
        }

        [Test]
        public void BadArgumentsAreTyped()
        {
            var e = Assert.Throws<PawlException>(() => PawlClient.Open(Path.Combine(dir, "x.db"), new byte[31], relay.Url, relay.Pin));
            Assert.AreEqual(ErrorCode.InvalidArgument, e.Code);
            StringAssert.Contains("32 bytes", e.Message);
            e = Assert.Throws<PawlException>(() => PawlClient.Open(Path.Combine(dir, "y.db"), NewKey(), relay.Url, new byte[3]));
            Assert.AreEqual(ErrorCode.InvalidArgument, e.Code);
            Assert.Throws<ArgumentNullException>(() => PawlClient.Open(null, NewKey(), relay.Url));
            Assert.Throws<ArgumentException>(() => PawlClient.Open("a\0b", NewKey(), relay.Url));
            Assert.AreEqual(ErrorCode.InvalidArgument,
                Assert.Throws<PawlException>(() => PawlLibrary.PinFromPem("not a pem")).Code);

            // A wrong registration code is the relay's refusal; a wrong pin is a TLS error.
            using (var c = Open("carol.db", NewKey()))
            {
                c.RequestCodeAsync("+4915100000073").Wait();
                var ex = Assert.Throws<AggregateException>(() => c.VerifyCodeAsync("+4915100000073", "000000").Wait());
                var pe = (PawlException)ex.InnerException;
                Assert.AreEqual(ErrorCode.Relay, pe.Code);
                StringAssert.Contains("BadCode", pe.Message);
            }
            using (var c = PawlClient.Open(Path.Combine(dir, "dave.db"), NewKey(), relay.Url, new byte[32]))
            {
                var ex = Assert.Throws<AggregateException>(() => c.RequestCodeAsync("+4915100000074").Wait());
                Assert.AreEqual(ErrorCode.Tls, ((PawlException)ex.InnerException).Code);
            }
        }

        [Test]
        public void DisposedClientsThrowObjectDisposed()
        {
            var c = Open("erin.db", NewKey());
            var q = new EventQueue(c);
            c.Dispose();
            c.Dispose(); // twice is fine
            Assert.Throws<ObjectDisposedException>(() => c.Messages(Bob, 1));
            Assert.Throws<ObjectDisposedException>(() => { var unused = c.IsConnected; });
            q.Dispose();
        }
    }
}
