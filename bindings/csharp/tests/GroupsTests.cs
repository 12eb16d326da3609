using System;
using System.IO;
using System.Linq;
using System.Security.Cryptography;
using System.Threading;
using NUnit.Framework;

namespace Pawl.Tests
{
    /// <summary>Groups from .NET: Alice creates a group with Bob and Carol, both get the
    /// update and the message in the group's chat, and after Carol is removed she gets
    /// nothing sent to the group; a non-member's send is a typed error.</summary>
    [TestFixture]
    public class GroupsTests : ClientTests
    {
        private const string Alice = "+4915100000087";
        private const string Bob = "+4915100000088";
        private const string Carol = "+4915100000089";

        public GroupsTests() : base("groups") { }

        [Test]
        public void AGroupWithARemoval()
        {
            using (var alice = Open("alice.db"))
            using (var bob = Open("bob.db"))
            using (var carol = Open("carol.db"))
            using (var aEvents = new EventQueue(alice))
            using (var bEvents = new EventQueue(bob))
            using (var cEvents = new EventQueue(carol))
            {
                Register(alice, Alice, aEvents);
                Register(bob, Bob, bEvents);
                Register(carol, Carol, cEvents);

                var id = alice.CreateGroupAsync("Climbing", Bob, Carol).Result;
                Assert.AreEqual(16, id.Length);
                var peer = PawlClient.GroupChatPeer(id);
                foreach (var q in new[] { bEvents, cEvents })
                    CollectionAssert.AreEqual(id, q.WaitFor<ClientEvent.GroupUpdated>(Wait).GroupId);

                alice.SendGroupTextAsync(id, "hello group").Wait();
                var clients = new[] { bob, carol };
                var queues = new[] { bEvents, cEvents };
                for (var i = 0; i < 2; i++)
                {
                    var c = clients[i];
                    var q = queues[i];
                    var m = q.WaitFor<ClientEvent.MessageReceived>(Wait).Message;
                    Assert.AreEqual("hello group", m.Text);
                    Assert.AreEqual(Alice, m.Sender);
                    CollectionAssert.AreEqual(new[] { "hello group" }, c.Messages(peer, 10).Select(x => x.Text).ToArray());
                }

                alice.RemoveGroupMembersAsync(id, Carol).Wait();
                cEvents.WaitFor<ClientEvent.GroupUpdated>(Wait);
                bEvents.WaitFor<ClientEvent.GroupUpdated>(Wait);
                alice.SendGroupTextAsync(id, "without carol").Wait();
                Assert.AreEqual("without carol", bEvents.WaitFor<ClientEvent.MessageReceived>(Wait).Message.Text);
                Thread.Sleep(300);
                CollectionAssert.AreEqual(new[] { "hello group" }, carol.Messages(peer, 10).Select(x => x.Text).ToArray());
                var e = Assert.Throws<AggregateException>(() => carol.SendGroupTextAsync(id, "still here?").Wait());
                Assert.AreEqual(ErrorCode.InvalidArgument, ((PawlException)e.InnerException).Code);
            }
        }
    }
}
