using System;
using System.Collections.Generic;
using System.Linq;
using System.Threading;
using System.Threading.Tasks;
using Pawl.Native;

namespace Pawl
{
    /// <summary>
    /// One device's client: its encrypted database and its connection to a Pawl relay.
    /// Thread-safe. Network calls are <c>...Async</c> and run on the thread pool; store
    /// reads are plain calls. Dispose it when done (the connection stops).
    /// </summary>
    /// <example>
    /// <code>
    /// using (var client = PawlClient.Open("alice.db", key, "wss://relay:8787/v1/ws", pin))
    /// {
    ///     client.EventReceived += (s, e) => Dispatcher.Post(() => Show(e.Event));
    ///     await client.RequestCodeAsync("+4915112345678");
    ///     await client.VerifyCodeAsync("+4915112345678", code);
    ///     client.Start();
    ///     long id = await client.SendTextAsync("+4915187654321", "hello");
    /// }
    /// </code>
    /// </example>
    public sealed unsafe class PawlClient : IDisposable
    {
        private readonly NativeHandle handle;
        private readonly object dispatchLock = new object();
        private EventHandler<ClientEventArgs> eventReceived;
        private Thread dispatcher;
        private volatile bool disposed;

        private PawlClient(IntPtr raw)
        {
            handle = new NativeHandle(raw, h => NativeMethods.pawl_client_free((PawlClientHandle*)h));
        }

        /// <summary>
        /// Open (or create) the device's database at <paramref name="dbPath"/>, encrypted
        /// with <paramref name="dbKey"/> (32 bytes; keep it in the platform's key store),
        /// for the relay at <paramref name="relayUrl"/> (<c>wss://host:port/v1/ws</c>).
        /// <paramref name="pinnedCertSha256"/> is the SHA-256 of the relay certificate's DER
        /// (see <see cref="PawlLibrary.PinFromPem"/>); null only for a <c>ws://</c> development
        /// relay. Nothing touches the network until a registration call or
        /// <see cref="Start"/>. Throws PawlException (WrongDatabaseKey, InvalidArgument...).
        /// </summary>
        public static PawlClient Open(string dbPath, byte[] dbKey, string relayUrl,
            byte[] pinnedCertSha256 = null)
        {
            if (dbKey == null) throw new ArgumentNullException("dbKey");
            byte[] path = Interop.Utf8(dbPath, "dbPath"), url = Interop.Utf8(relayUrl, "relayUrl");
            PawlClientHandle* raw = null;
            fixed (byte* p = path, k = dbKey, u = url, pin = pinnedCertSha256)
            {
                Interop.Check(NativeMethods.pawl_client_open(p, k, Interop.Len(dbKey), u, pin,
                    Interop.Len(pinnedCertSha256), &raw));
            }
            return new PawlClient((IntPtr)raw);
        }

        private static PawlClientHandle* H(IntPtr h)
        {
            return (PawlClientHandle*)h;
        }

        private void Call(Func<IntPtr, uint> call)
        {
            handle.Use(h => Interop.Check(call(h)));
        }

        private Task Run(Func<IntPtr, uint> call)
        {
            return Task.Run(() => Call(call));
        }

        /// <summary>Ask the relay to send a verification code to <paramref name="phone"/> (E.164).</summary>
        public Task RequestCodeAsync(string phone)
        {
            var p = Interop.Utf8(phone, "phone");
            return Run(h => { fixed (byte* pp = p) return NativeMethods.pawl_client_request_code(H(h), pp); });
        }

        /// <summary>Register this device as the primary device of <paramref name="phone"/>
        /// with the code received.</summary>
        public Task VerifyCodeAsync(string phone, string code)
        {
            byte[] p = Interop.Utf8(phone, "phone"), c = Interop.Utf8(code, "code");
            return Run(h =>
            {
                fixed (byte* pp = p, cp = c) return NativeMethods.pawl_client_verify_code(H(h), pp, cp);
            });
        }

        /// <summary>Start the connection (idempotent): connect, authenticate, top up
        /// prekeys, resend the outbox, receive; it reconnects with backoff until
        /// <see cref="ShutdownAsync"/>.</summary>
        public void Start()
        {
            Call(h => NativeMethods.pawl_client_start(H(h)));
        }

        /// <summary>Stop the connection. Unsent messages stay queued for the next Start.</summary>
        public Task ShutdownAsync()
        {
            return Run(h => NativeMethods.pawl_client_shutdown(H(h)));
        }

        /// <summary>Whether an authenticated connection to the relay is up.</summary>
        public bool IsConnected
        {
            get { return handle.Use(h => NativeMethods.pawl_client_is_connected(H(h)) != 0); }
        }

        /// <summary>This device's address (after registration; else NotRegistered).</summary>
        public Address Address
        {
            get
            {
                return handle.Use(h =>
                {
                    PawlBuffer name;
                    uint device;
                    Interop.Check(NativeMethods.pawl_client_address(H(h), &name, &device));
                    return new Address(Interop.TakeString(name), device);
                });
            }
        }

        /// <summary>This device's public identity key (33 bytes).</summary>
        public byte[] IdentityKey
        {
            get
            {
                return handle.Use(h =>
                {
                    PawlBuffer key;
                    Interop.Check(NativeMethods.pawl_client_identity_key(H(h), &key));
                    return Interop.Take(key);
                });
            }
        }

        /// <summary>Send a text to every device of <paramref name="peer"/>; returns the
        /// message id. Stored and queued before the task completes; Sent, Delivered and
        /// Read events follow.</summary>
        public Task<long> SendTextAsync(string peer, string text)
        {
            byte[] p = Interop.Utf8(peer, "peer"), t = Interop.Utf8(text, "text");
            return Task.Run(() => handle.Use(h =>
            {
                long id;
                fixed (byte* pp = p, tp = t)
                    Interop.Check(NativeMethods.pawl_client_send_text(H(h), pp, tp, &id));
                return id;
            }));
        }

        /// <summary>Encrypt the file at <paramref name="path"/> as an attachment and upload
        /// it to the relay's blob store (in chunks: constant memory; resumes after a
        /// dropped connection). Then send it with <see cref="SendMediaAsync"/>.</summary>
        public Task<Attachment> UploadAttachmentAsync(MediaKind kind, string path)
        {
            var p = Interop.Utf8(path, "path");
            return Task.Run(() => handle.Use(h =>
            {
                PawlMedia m;
                fixed (byte* pp = p)
                    Interop.Check(NativeMethods.pawl_client_upload_attachment(H(h), (uint)kind, pp, &m));
                try
                {
                    return Interop.AttachmentOf(&m);
                }
                finally
                {
                    NativeMethods.pawl_media_free(m);
                }
            }));
        }

        /// <summary>Send a media message (its attachment uploaded first) to every device
        /// of <paramref name="peer"/>; returns the message id, like
        /// <see cref="SendTextAsync"/>.</summary>
        public Task<long> SendMediaAsync(string peer, MediaMessage media)
        {
            var p = Interop.Utf8(peer, "peer");
            if (media == null) throw new ArgumentNullException("media");
            return Task.Run(() => handle.Use(h => Interop.WithMedia(media, m =>
            {
                long id;
                fixed (byte* pp = p)
                    Interop.Check(NativeMethods.pawl_client_send_media(H(h), pp, (PawlMedia*)m, &id));
                return id;
            })));
        }

        /// <summary>Download an attachment, check it (blob hash, MAC, file hash and
        /// length) and decrypt it into the file at <paramref name="path"/>; nothing is at
        /// the path unless every check passed (otherwise PawlException, Protocol).</summary>
        public Task DownloadAttachmentAsync(Attachment attachment, string path)
        {
            if (attachment == null) throw new ArgumentNullException("attachment");
            var p = Interop.Utf8(path, "path");
            var media = new MediaMessage { Attachment = attachment };
            return Task.Run(() => handle.Use(h => Interop.WithMedia(media, m =>
            {
                fixed (byte* pp = p)
                    Interop.Check(NativeMethods.pawl_client_download_attachment(H(h), (PawlMedia*)m, pp));
                return true;
            })));
        }

        /// <summary>Mark the chat with <paramref name="peer"/> read and send read
        /// receipts; returns how many messages were marked.</summary>
        public Task<uint> MarkReadAsync(string peer)
        {
            var p = Interop.Utf8(peer, "peer");
            return Task.Run(() => handle.Use(h =>
            {
                uint n;
                fixed (byte* pp = p) Interop.Check(NativeMethods.pawl_client_mark_read(H(h), pp, &n));
                return n;
            }));
        }

        /// <summary>On a new (unregistered) device: start linking it to an account;
        /// show the codes of the returned <see cref="PawlLinking"/>.</summary>
        public Task<PawlLinking> StartLinkingAsync()
        {
            return Task.Run(() => handle.Use(h =>
            {
                PawlLinkingHandle* raw = null;
                Interop.Check(NativeMethods.pawl_client_start_linking(H(h), &raw));
                return new PawlLinking((IntPtr)raw);
            }));
        }

        /// <summary>On the phone: link the device whose code was scanned (show
        /// <see cref="PawlLibrary.ParseLinkCode"/>'s answer to the user first). Returns the
        /// new device's id once it accepted; its keys and recent history are sent to it.</summary>
        public Task<uint> LinkDeviceAsync(string code)
        {
            var c = Interop.Utf8(code, "code");
            return Task.Run(() => handle.Use(h =>
            {
                uint device;
                fixed (byte* cp = c) Interop.Check(NativeMethods.pawl_client_link_device(H(h), cp, &device));
                return device;
            }));
        }

        /// <summary>Create a group with <paramref name="members"/> (user names; this
        /// account is added as its admin); returns the group id (16 bytes). Every member's
        /// devices are told, pairwise-encrypted.</summary>
        public Task<byte[]> CreateGroupAsync(string name, params string[] members)
        {
            var n = Interop.Utf8(name, "name");
            var m = Interop.Utf8(string.Join("\n", members), "members");
            return Task.Run(() => handle.Use(h =>
            {
                PawlBuffer id;
                fixed (byte* np = n)
                fixed (byte* mp = m)
                    Interop.Check(NativeMethods.pawl_client_create_group(H(h), np, mp, &id));
                return Interop.Take(id);
            }));
        }

        /// <summary>The peer name of a group's chat (for <see cref="Messages"/>):
        /// <c>group:</c> and the id in lowercase hex.</summary>
        public static string GroupChatPeer(byte[] groupId)
        {
            if (groupId == null) throw new ArgumentNullException(nameof(groupId));
            return "group:" + string.Concat(groupId.Select(b => b.ToString("x2")));
        }

        /// <summary>Add members to a group (admins only).</summary>
        public Task AddGroupMembersAsync(byte[] groupId, params string[] users) => ChangeGroupMembers(groupId, users, 1);

        /// <summary>Remove members from a group (admins only): they get nothing sent
        /// afterwards (the sender key is rotated).</summary>
        public Task RemoveGroupMembersAsync(byte[] groupId, params string[] users) => ChangeGroupMembers(groupId, users, 0);

        private Task ChangeGroupMembers(byte[] groupId, string[] users, byte add)
        {
            if (groupId == null) throw new ArgumentNullException(nameof(groupId));
            var m = Interop.Utf8(string.Join("\n", users), "users");
            return Run(h =>
            {
                fixed (byte* gp = groupId)
                fixed (byte* mp = m)
                    return NativeMethods.pawl_client_change_group_members(H(h), gp, Interop.Len(groupId), mp, add);
            });
        }

        /// <summary>Send <paramref name="text"/> to every device of every member of the
        /// group; returns the message id (stored in the group's chat first).</summary>
        public Task<long> SendGroupTextAsync(byte[] groupId, string text)
        {
            if (groupId == null) throw new ArgumentNullException(nameof(groupId));
            var t = Interop.Utf8(text, "text");
            return Task.Run(() => handle.Use(h =>
            {
                long id;
                fixed (byte* gp = groupId)
                fixed (byte* tp = t)
                    Interop.Check(NativeMethods.pawl_client_send_group_text(H(h), gp, Interop.Len(groupId), tp, &id));
                return id;
            }));
        }

        /// <summary>On the phone: unlink a device; it can read nothing sent afterwards.</summary>
        public Task UnlinkDeviceAsync(uint deviceId)
        {
            return Run(h => NativeMethods.pawl_client_unlink_device(H(h), deviceId));
        }

        /// <summary>Archive or unarchive the chat with <paramref name="peer"/> on every
        /// device of the account.</summary>
        public Task SetArchivedAsync(string peer, bool archived)
        {
            var p = Interop.Utf8(peer, "peer");
            return Run(h =>
            {
                fixed (byte* pp = p) return NativeMethods.pawl_client_set_archived(H(h), pp, archived ? (byte)1 : (byte)0);
            });
        }

        /// <summary>Whether the chat with <paramref name="peer"/> is archived (after
        /// pulling what the account's other devices wrote).</summary>
        public Task<bool> IsArchivedAsync(string peer)
        {
            var p = Interop.Utf8(peer, "peer");
            return Task.Run(() => handle.Use(h =>
            {
                byte archived;
                fixed (byte* pp = p) Interop.Check(NativeMethods.pawl_client_is_archived(H(h), pp, &archived));
                return archived != 0;
            }));
        }

        /// <summary>Tell <paramref name="peer"/> this user started or stopped typing (not stored).</summary>
        public Task SetTypingAsync(string peer, bool started)
        {
            var p = Interop.Utf8(peer, "peer");
            return Run(h =>
            {
                fixed (byte* pp = p) return NativeMethods.pawl_client_set_typing(H(h), pp, started ? (byte)1 : (byte)0);
            });
        }

        /// <summary>Tell <paramref name="peer"/> whether this user is online (not stored).</summary>
        public Task SetPresenceAsync(string peer, bool online)
        {
            var p = Interop.Utf8(peer, "peer");
            return Run(h =>
            {
                fixed (byte* pp = p) return NativeMethods.pawl_client_set_presence(H(h), pp, online ? (byte)1 : (byte)0);
            });
        }

        /// <summary>Which of these phone numbers are registered (only hash prefixes are sent).</summary>
        public Task<string[]> DiscoverAsync(IEnumerable<string> phones)
        {
            if (phones == null) throw new ArgumentNullException("phones");
            var encoded = phones.Select(p => Interop.Utf8(p, "phones")).ToArray();
            return Task.Run(() => handle.Use(h =>
            {
                var pins = new System.Runtime.InteropServices.GCHandle[encoded.Length];
                var ptrs = new IntPtr[encoded.Length];
                try
                {
                    for (int i = 0; i < encoded.Length; i++)
                    {
                        pins[i] = System.Runtime.InteropServices.GCHandle.Alloc(encoded[i],
                            System.Runtime.InteropServices.GCHandleType.Pinned);
                        ptrs[i] = pins[i].AddrOfPinnedObject();
                    }
                    PawlBufferList list;
                    fixed (IntPtr* pp = ptrs)
                        Interop.Check(NativeMethods.pawl_client_discover(H(h), (byte**)pp,
                            new UIntPtr((uint)ptrs.Length), &list));
                    try
                    {
                        var found = new string[checked((int)list.len.ToUInt64())];
                        for (int i = 0; i < found.Length; i++) found[i] = Interop.CopyString(list.items[i]);
                        return found;
                    }
                    finally
                    {
                        NativeMethods.pawl_buffer_list_free(list);
                    }
                }
                finally
                {
                    foreach (var pin in pins)
                        if (pin.IsAllocated) pin.Free();
                }
            }));
        }

        /// <summary>The latest <paramref name="limit"/> messages of the chat with
        /// <paramref name="peer"/>, newest first.</summary>
        public ChatMessage[] Messages(string peer, uint limit)
        {
            var p = Interop.Utf8(peer, "peer");
            return handle.Use(h =>
            {
                PawlMessageList list;
                fixed (byte* pp = p) Interop.Check(NativeMethods.pawl_client_messages(H(h), pp, limit, &list));
                return Interop.TakeMessages(list);
            });
        }

        /// <summary>Full-text search over all messages (SQLite FTS5 syntax), newest first.</summary>
        public ChatMessage[] Search(string query, uint limit)
        {
            var q = Interop.Utf8(query, "query");
            return handle.Use(h =>
            {
                PawlMessageList list;
                fixed (byte* qp = q) Interop.Check(NativeMethods.pawl_client_search(H(h), qp, limit, &list));
                return Interop.TakeMessages(list);
            });
        }

        /// <summary>The delivery state of a message (InvalidArgument for an unknown id).</summary>
        public MessageStatus MessageStatus(long messageId)
        {
            return handle.Use(h =>
            {
                uint status;
                Interop.Check(NativeMethods.pawl_client_message_status(H(h), messageId, &status));
                return (MessageStatus)status;
            });
        }

        /// <summary>The safety number with <paramref name="peer"/> (after a session
        /// exists; else NoSession) and its QR code.</summary>
        public SafetyNumber SafetyNumber(string peer)
        {
            var p = Interop.Utf8(peer, "peer");
            return handle.Use(h =>
            {
                PawlSafetyNumber n;
                fixed (byte* pp = p) Interop.Check(NativeMethods.pawl_client_safety_number(H(h), pp, &n));
                try
                {
                    return new SafetyNumber(Interop.CopyString(n.digits), Interop.Copy(n.scannable),
                        Interop.Copy(n.qr_png), Interop.CopyString(n.qr_svg));
                }
                finally
                {
                    NativeMethods.pawl_safety_number_free(n);
                }
            });
        }

        /// <summary>Compare the code scanned from <paramref name="peer"/>'s screen with
        /// ours: true when both sides see the same safety number. A payload that is not a
        /// safety-number code throws PawlException (InvalidArgument).</summary>
        public bool CompareScanned(string peer, byte[] scanned)
        {
            if (scanned == null) throw new ArgumentNullException("scanned");
            var p = Interop.Utf8(peer, "peer");
            return handle.Use(h =>
            {
                byte match;
                fixed (byte* pp = p, sp = scanned)
                    Interop.Check(NativeMethods.pawl_client_compare_scanned(H(h), pp, sp,
                        Interop.Len(scanned), &match));
                return match != 0;
            });
        }

        /// <summary>Wait up to <paramref name="timeout"/> for the next event; null if none
        /// came. Events are kept from Open on, in order. Do not mix with
        /// <see cref="EventReceived"/> (its thread takes them).</summary>
        public ClientEvent NextEvent(TimeSpan timeout)
        {
            uint ms = (uint)Math.Max(0, Math.Min(timeout.TotalMilliseconds, uint.MaxValue));
            return handle.Use(h =>
            {
                PawlEvent e;
                Interop.Check(NativeMethods.pawl_client_next_event(H(h), ms, &e));
                return Interop.TakeEvent(e);
            });
        }

        /// <summary>
        /// The client's events, raised in order on a background thread of this object
        /// (started by the first subscription; events from before it are kept and
        /// raised then). Hand them to the UI thread and return quickly; an exception
        /// thrown by a handler is dropped with that event.
        /// </summary>
        public event EventHandler<ClientEventArgs> EventReceived
        {
            add
            {
                lock (dispatchLock)
                {
                    if (disposed) throw new ObjectDisposedException("PawlClient");
                    eventReceived += value;
                    if (dispatcher == null)
                    {
                        dispatcher = new Thread(Dispatch) { IsBackground = true, Name = "pawl-events" };
                        dispatcher.Start();
                    }
                }
            }
            remove
            {
                lock (dispatchLock) eventReceived -= value;
            }
        }

        private void Dispatch()
        {
            while (!disposed)
            {
                ClientEvent e;
                try
                {
                    e = NextEvent(TimeSpan.FromMilliseconds(200));
                }
                catch (ObjectDisposedException)
                {
                    return;
                }
                if (e == null) continue;
                EventHandler<ClientEventArgs> handlers;
                lock (dispatchLock) handlers = eventReceived;
                if (handlers == null) continue;
                foreach (EventHandler<ClientEventArgs> h in handlers.GetInvocationList())
                {
                    try
                    {
                        h(this, new ClientEventArgs(e));
                    }
                    catch (Exception)
                    {
                        // The app's handler failed: drop the event for it, keep the stream.
                    }
                }
            }
        }

        /// <summary>Stop the event thread and release the client (its connection stops;
        /// received messages are committed, unsent ones stay queued).</summary>
        public void Dispose()
        {
            Thread t;
            lock (dispatchLock)
            {
                if (disposed) return;
                disposed = true;
                t = dispatcher;
            }
            if (t != null && t != Thread.CurrentThread) t.Join();
            handle.Dispose();
        }
    }

    /// <summary>The event of <see cref="PawlClient.EventReceived"/>.</summary>
    public sealed class ClientEventArgs : EventArgs
    {
        /// <summary>What happened.</summary>
        public ClientEvent Event { get; private set; }

        internal ClientEventArgs(ClientEvent e)
        {
            Event = e;
        }
    }
}
