using System;
using Pawl.Native;

namespace Pawl
{
    /// <summary>Pawl's stable numeric error codes (never renumbered or reused).</summary>
    public enum ErrorCode : uint
    {
        /// <summary>Invalid argument: a key or pin not 32 bytes, a malformed scanned QR,
        /// an unknown message id.</summary>
        InvalidArgument = 1,
        /// <summary>Wrong database key, or not a Pawl database. Nothing changed.</summary>
        WrongDatabaseKey = 2,
        /// <summary>Not registered yet (RequestCodeAsync, then VerifyCodeAsync).</summary>
        NotRegistered = 3,
        /// <summary>No relay connection right now.</summary>
        NotConnected = 4,
        /// <summary>The relay refused (its own code is in the message).</summary>
        Relay = 5,
        /// <summary>TLS failed (for instance: not the pinned certificate).</summary>
        Tls = 6,
        /// <summary>Unusable configuration (relay URL, TLS settings).</summary>
        Config = 7,
        /// <summary>The network failed or timed out.</summary>
        Transport = 8,
        /// <summary>Invalid data from the relay or a peer.</summary>
        Protocol = 9,
        /// <summary>The peer's identity key changed since it was first trusted.</summary>
        UntrustedIdentity = 10,
        /// <summary>No session with this peer yet.</summary>
        NoSession = 11,
        /// <summary>The local store failed.</summary>
        Store = 12,
        /// <summary>The database is locked by another process.</summary>
        DatabaseBusy = 13,
        /// <summary>The message was already decrypted (a replay): drop it.</summary>
        DuplicateMessage = 14,
        /// <summary>A bug inside Pawl (a caught panic).</summary>
        Internal = 99,
    }

    /// <summary>Every failure of a Pawl call: <see cref="Code"/> says what kind (stable,
    /// switch on it); <see cref="Exception.Message"/> is for logs.</summary>
    [Serializable]
    public sealed class PawlException : Exception
    {
        /// <summary>The stable code.</summary>
        public ErrorCode Code { get; private set; }

        /// <summary>The code as its number.</summary>
        public uint NumericCode
        {
            get { return (uint)Code; }
        }

        /// <summary>An error with its code and message.</summary>
        public PawlException(ErrorCode code, string message)
            : base(message)
        {
            Code = code;
            HResult = unchecked((int)(0xA0500000u | (uint)code));
        }
    }

    /// <summary>Delivery state of a message; only moves forward.</summary>
    public enum MessageStatus : uint
    {
        /// <summary>Stored, not yet accepted by the relay.</summary>
        Pending = 0,
        /// <summary>Accepted by the relay.</summary>
        Sent = 1,
        /// <summary>Delivered to a device of the recipient.</summary>
        Delivered = 2,
        /// <summary>Read by the recipient (incoming: read by us).</summary>
        Read = 3,
        /// <summary>Could not be sent.</summary>
        Failed = 4,
    }

    /// <summary>One device of a user: the user's name (phone number) and device id.</summary>
    public sealed class Address : IEquatable<Address>
    {
        /// <summary>The user (E.164 phone number).</summary>
        public string Name { get; private set; }

        /// <summary>The device id (1 = primary).</summary>
        public uint DeviceId { get; private set; }

        /// <summary>An address.</summary>
        public Address(string name, uint deviceId)
        {
            Name = name;
            DeviceId = deviceId;
        }

        /// <inheritdoc/>
        public bool Equals(Address other)
        {
            return other != null && other.Name == Name && other.DeviceId == DeviceId;
        }

        /// <inheritdoc/>
        public override bool Equals(object obj)
        {
            return Equals(obj as Address);
        }

        /// <inheritdoc/>
        public override int GetHashCode()
        {
            return (Name ?? "").GetHashCode() * 31 + (int)DeviceId;
        }

        /// <inheritdoc/>
        public override string ToString()
        {
            return Name + "." + DeviceId;
        }
    }

    /// <summary>A stored message (sent or received).</summary>
    public sealed class ChatMessage
    {
        /// <summary>Id in the store (increases with insertion).</summary>
        public long Id { get; private set; }
        /// <summary>The chat it belongs to.</summary>
        public long ChatId { get; private set; }
        /// <summary>The sender's user name (ours for outgoing messages).</summary>
        public string Sender { get; private set; }
        /// <summary>The sender's device.</summary>
        public uint SenderDevice { get; private set; }
        /// <summary>Sent by this device (true) or received.</summary>
        public bool Outgoing { get; private set; }
        /// <summary>The body as text; null if it is not UTF-8 (see <see cref="Body"/>).</summary>
        public string Text { get; private set; }
        /// <summary>The body, byte for byte.</summary>
        public byte[] Body { get; private set; }
        /// <summary>The sender's timestamp, ms since the Unix epoch.</summary>
        public long SentAt { get; private set; }
        /// <summary>When this device received it (incoming only), ms since the Unix epoch.</summary>
        public long? ReceivedAt { get; private set; }
        /// <summary>Delivery state.</summary>
        public MessageStatus Status { get; private set; }
        /// <summary>For a media message: the attachment and its description
        /// (<see cref="Text"/> is the caption); null for text messages.</summary>
        public MediaMessage Media { get; private set; }

        internal ChatMessage(long id, long chatId, string sender, uint senderDevice, bool outgoing,
            string text, byte[] body, long sentAt, long? receivedAt, MessageStatus status, MediaMessage media)
        {
            Media = media;
            Id = id;
            ChatId = chatId;
            Sender = sender;
            SenderDevice = senderDevice;
            Outgoing = outgoing;
            Text = text;
            Body = body;
            SentAt = sentAt;
            ReceivedAt = receivedAt;
            Status = status;
        }
    }

    /// <summary>What an attachment is (selects its key expansion).</summary>
    public enum MediaKind : uint
    {
        /// <summary>Images, stickers.</summary>
        Image = 1,
        /// <summary>Video, GIFs.</summary>
        Video = 2,
        /// <summary>Audio, voice notes.</summary>
        Audio = 3,
        /// <summary>Any other file.</summary>
        Document = 4,
    }

    /// <summary>An encrypted file in the relay's blob store and what is needed to fetch,
    /// check and decrypt it (from <see cref="PawlClient.UploadAttachmentAsync"/>).</summary>
    public sealed class Attachment
    {
        /// <summary>What it is.</summary>
        public MediaKind Kind { get; set; }
        /// <summary>The blob's id at the relay.</summary>
        public byte[] BlobId { get; set; }
        /// <summary>The 32-byte media key.</summary>
        public byte[] MediaKey { get; set; }
        /// <summary>SHA-256 of the file.</summary>
        public byte[] FileSha256 { get; set; }
        /// <summary>SHA-256 of the encrypted blob.</summary>
        public byte[] FileEncSha256 { get; set; }
        /// <summary>The file's length in bytes.</summary>
        public ulong FileLength { get; set; }
    }

    /// <summary>A media message: the attachment and what the app shows before
    /// downloading it.</summary>
    public sealed class MediaMessage
    {
        /// <summary>The file.</summary>
        public Attachment Attachment { get; set; }
        /// <summary>MIME type, e.g. <c>image/png</c>.</summary>
        public string MimeType { get; set; }
        /// <summary>The file's name.</summary>
        public string FileName { get; set; }
        /// <summary>A caption (stored as the message text: searchable).</summary>
        public string Caption { get; set; }
        /// <summary>A small preview image (JPEG/PNG, at most 64 KiB).</summary>
        public byte[] Thumbnail { get; set; }
        /// <summary>Pixel width (0 if unknown).</summary>
        public uint Width { get; set; }
        /// <summary>Pixel height (0 if unknown).</summary>
        public uint Height { get; set; }
    }

    /// <summary>The safety number with a peer and its QR code.</summary>
    public sealed class SafetyNumber
    {
        /// <summary>The 60 digits, identical on both sides (show them in 12 groups of 5).</summary>
        public string Digits { get; private set; }
        /// <summary>The payload of the QR code the peer scans (pass what you scan from the
        /// peer to <see cref="PawlClient.CompareScanned"/>).</summary>
        public byte[] Scannable { get; private set; }
        /// <summary>The QR code as a PNG image.</summary>
        public byte[] QrPng { get; private set; }
        /// <summary>The QR code as an SVG document.</summary>
        public string QrSvg { get; private set; }

        internal SafetyNumber(string digits, byte[] scannable, byte[] qrPng, string qrSvg)
        {
            Digits = digits;
            Scannable = scannable;
            QrPng = qrPng;
            QrSvg = qrSvg;
        }
    }

    /// <summary>What happened, for the app. Match on the subclasses.</summary>
    public abstract class ClientEvent
    {
        internal static unsafe ClientEvent FromNative(PawlEvent* e)
        {
            switch (e->kind)
            {
                case 0: return null;
                case 1: return new Connected();
                case 2: return new Disconnected(Interop.CopyString(e->text));
                case 3: return new MessageReceived(Interop.Message(&e->message));
                case 4: return new Sent(e->message_id);
                case 5: return new Delivered(e->message_id, PeerOf(e));
                case 6: return new Read(e->message_id, PeerOf(e));
                case 7: return new Typing(PeerOf(e), e->flag != 0);
                case 8: return new Presence(PeerOf(e), e->flag != 0);
                case 9:
                    return new SendFailed(e->flag != 0 ? e->message_id : (long?)null,
                        Interop.CopyString(e->text));
                case 10: return new DecryptFailed(PeerOf(e), Interop.CopyString(e->text));
                case 11: return new PreKeysUploaded(e->count);
                case 12: return new DeviceLinked(e->peer_device);
                case 13: return new HistorySynced(e->progress, e->total, e->count);
                case 14: return new AppStateChanged(Interop.CopyString(e->text));
                case 15: return new DeviceListRejected(Interop.CopyString(e->peer), Interop.CopyString(e->text));
                case 16: return new GroupUpdated(Interop.Copy(e->text), e->message_id);
                default: return new Unknown(e->kind);
            }
        }

        private static unsafe Address PeerOf(PawlEvent* e)
        {
            return new Address(Interop.CopyString(e->peer), e->peer_device);
        }

        /// <summary>On the phone: a companion was linked.</summary>
        public sealed class DeviceLinked : ClientEvent
        {
            /// <summary>Its device id.</summary>
            public uint DeviceId { get; private set; }
            internal DeviceLinked(uint id) { DeviceId = id; }
        }

        /// <summary>On a new companion: a chunk of history from the phone was imported.</summary>
        public sealed class HistorySynced : ClientEvent
        {
            /// <summary>Chunks imported so far.</summary>
            public uint ChunksDone { get; private set; }
            /// <summary>Chunks in all.</summary>
            public uint Chunks { get; private set; }
            /// <summary>Messages this chunk added.</summary>
            public uint Messages { get; private set; }
            internal HistorySynced(uint done, uint chunks, uint messages)
            {
                ChunksDone = done;
                Chunks = chunks;
                Messages = messages;
            }
        }

        /// <summary>Synced state changed on another device of the account.</summary>
        public sealed class AppStateChanged : ClientEvent
        {
            /// <summary>The collection.</summary>
            public string Collection { get; private set; }
            internal AppStateChanged(string collection) { Collection = collection; }
        }

        /// <summary>A device of <see cref="User"/> failed the checks: nothing is encrypted to it.</summary>
        public sealed class DeviceListRejected : ClientEvent
        {
            /// <summary>Whose devices.</summary>
            public string User { get; private set; }
            /// <summary>Why.</summary>
            public string Reason { get; private set; }
            internal DeviceListRejected(string user, string reason) { User = user; Reason = reason; }
        }

        /// <summary>A group was created or changed, or this account was removed from it
        /// (already stored).</summary>
        public sealed class GroupUpdated : ClientEvent
        {
            /// <summary>The group's id (16 bytes).</summary>
            public byte[] GroupId { get; private set; }
            /// <summary>Its chat.</summary>
            public long ChatId { get; private set; }
            internal GroupUpdated(byte[] groupId, long chatId) { GroupId = groupId; ChatId = chatId; }
        }

        /// <summary>Connected to the relay and authenticated.</summary>
        public sealed class Connected : ClientEvent
        {
        }

        /// <summary>The connection dropped; the client reconnects by itself.</summary>
        public sealed class Disconnected : ClientEvent
        {
            /// <summary>Why.</summary>
            public string Reason { get; private set; }
            internal Disconnected(string reason) { Reason = reason; }
        }

        /// <summary>A new message, already committed to the store.</summary>
        public sealed class MessageReceived : ClientEvent
        {
            /// <summary>The message.</summary>
            public ChatMessage Message { get; private set; }
            internal MessageReceived(ChatMessage message) { Message = message; }
        }

        /// <summary>The relay accepted our message.</summary>
        public sealed class Sent : ClientEvent
        {
            /// <summary>Message id.</summary>
            public long MessageId { get; private set; }
            internal Sent(long id) { MessageId = id; }
        }

        /// <summary>A device of the recipient received our message.</summary>
        public sealed class Delivered : ClientEvent
        {
            /// <summary>Message id.</summary>
            public long MessageId { get; private set; }
            /// <summary>The device.</summary>
            public Address Device { get; private set; }
            internal Delivered(long id, Address device) { MessageId = id; Device = device; }
        }

        /// <summary>The recipient read our message.</summary>
        public sealed class Read : ClientEvent
        {
            /// <summary>Message id.</summary>
            public long MessageId { get; private set; }
            /// <summary>The reader's device.</summary>
            public Address By { get; private set; }
            internal Read(long id, Address by) { MessageId = id; By = by; }
        }

        /// <summary>A contact started or stopped typing.</summary>
        public sealed class Typing : ClientEvent
        {
            /// <summary>Their device.</summary>
            public Address Peer { get; private set; }
            /// <summary>Started (true) or stopped.</summary>
            public bool Started { get; private set; }
            internal Typing(Address peer, bool started) { Peer = peer; Started = started; }
        }

        /// <summary>A contact came online or went offline.</summary>
        public sealed class Presence : ClientEvent
        {
            /// <summary>Their device.</summary>
            public Address Peer { get; private set; }
            /// <summary>Online or not.</summary>
            public bool Online { get; private set; }
            internal Presence(Address peer, bool online) { Peer = peer; Online = online; }
        }

        /// <summary>A message could not be sent.</summary>
        public sealed class SendFailed : ClientEvent
        {
            /// <summary>Message id, if it was a stored message.</summary>
            public long? MessageId { get; private set; }
            /// <summary>Why.</summary>
            public string Reason { get; private set; }
            internal SendFailed(long? id, string reason) { MessageId = id; Reason = reason; }
        }

        /// <summary>A received message could not be decrypted and was dropped.</summary>
        public sealed class DecryptFailed : ClientEvent
        {
            /// <summary>The sender device.</summary>
            public Address Peer { get; private set; }
            /// <summary>Why.</summary>
            public string Error { get; private set; }
            internal DecryptFailed(Address peer, string error) { Peer = peer; Error = error; }
        }

        /// <summary>One-time prekeys were uploaded to the relay.</summary>
        public sealed class PreKeysUploaded : ClientEvent
        {
            /// <summary>How many.</summary>
            public uint Count { get; private set; }
            internal PreKeysUploaded(uint count) { Count = count; }
        }

        /// <summary>An event kind this version of the package does not know (a newer
        /// native library).</summary>
        public sealed class Unknown : ClientEvent
        {
            /// <summary>Its number.</summary>
            public uint Kind { get; private set; }
            internal Unknown(uint kind) { Kind = kind; }
        }
    }

    /// <summary>An encrypted message: its Signal type and bytes.</summary>
    public sealed class Ciphertext
    {
        /// <summary>3 = PreKeySignalMessage (first messages of a session), 2 = SignalMessage.</summary>
        public byte MessageType { get; private set; }
        /// <summary>The serialized message.</summary>
        public byte[] Body { get; private set; }

        /// <summary>A ciphertext received over the app's own transport.</summary>
        public Ciphertext(byte messageType, byte[] body)
        {
            if (body == null) throw new ArgumentNullException("body");
            MessageType = messageType;
            Body = body;
        }
    }

    /// <summary>A device's prekey bundle: what it publishes so others can start a
    /// session with it.</summary>
    public sealed class PreKeyBundle
    {
        /// <summary>The device's registration id.</summary>
        public uint RegistrationId { get; set; }
        /// <summary>The device id.</summary>
        public uint DeviceId { get; set; }
        /// <summary>The one-time prekey's id, if the bundle has one.</summary>
        public uint? PreKeyId { get; set; }
        /// <summary>The one-time prekey (33 bytes), if any.</summary>
        public byte[] PreKey { get; set; }
        /// <summary>The signed prekey's id.</summary>
        public uint SignedPreKeyId { get; set; }
        /// <summary>The signed prekey (33 bytes).</summary>
        public byte[] SignedPreKey { get; set; }
        /// <summary>The identity key's signature over the signed prekey (64 bytes).</summary>
        public byte[] SignedPreKeySignature { get; set; }
        /// <summary>The identity key (33 bytes).</summary>
        public byte[] IdentityKey { get; set; }
    }
}
