using System;
using Pawl.Native;

namespace Pawl
{
    /// <summary>
    /// The Signal protocol without the relay, for apps that bring their own transport:
    /// one device's identity, prekeys and sessions in an encrypted database. Thread-safe.
    /// </summary>
    /// <example>
    /// <code>
    /// using (var alice = PawlProtocol.Open("alice.db", keyA))
    /// using (var bob = PawlProtocol.Open("bob.db", keyB))
    /// {
    ///     alice.ProcessPreKeyBundle("bob", 1, bob.PreKeyBundle(1, 42));
    ///     Ciphertext c = alice.Encrypt("bob", 1, Encoding.UTF8.GetBytes("hi"));
    ///     byte[] plain = bob.Decrypt("alice", 1, c);
    /// }
    /// </code>
    /// </example>
    public sealed unsafe class PawlProtocol : IDisposable
    {
        private readonly NativeHandle handle;

        private PawlProtocol(IntPtr raw)
        {
            handle = new NativeHandle(raw, h => NativeMethods.pawl_protocol_free((PawlProtocolHandle*)h));
        }

        private static PawlProtocolHandle* H(IntPtr h)
        {
            return (PawlProtocolHandle*)h;
        }

        /// <summary>Open (or create) the database at <paramref name="dbPath"/>
        /// (<c>:memory:</c> for a throwaway one) with its 32-byte key. A new database gets
        /// an identity key, a registration id and a signed prekey.</summary>
        public static PawlProtocol Open(string dbPath, byte[] dbKey)
        {
            if (dbKey == null) throw new ArgumentNullException("dbKey");
            var path = Interop.Utf8(dbPath, "dbPath");
            PawlProtocolHandle* raw = null;
            fixed (byte* p = path, k = dbKey)
                Interop.Check(NativeMethods.pawl_protocol_open(p, k, Interop.Len(dbKey), &raw));
            return new PawlProtocol((IntPtr)raw);
        }

        /// <summary>This device's public identity key (33 bytes).</summary>
        public byte[] IdentityKey
        {
            get
            {
                return handle.Use(h =>
                {
                    PawlBuffer key;
                    Interop.Check(NativeMethods.pawl_protocol_identity_key(H(h), &key));
                    return Interop.Take(key);
                });
            }
        }

        /// <summary>This device's registration id.</summary>
        public uint RegistrationId
        {
            get
            {
                return handle.Use(h =>
                {
                    uint id;
                    Interop.Check(NativeMethods.pawl_protocol_registration_id(H(h), &id));
                    return id;
                });
            }
        }

        /// <summary>The bundle to publish for <paramref name="deviceId"/>. With
        /// <paramref name="oneTimePreKeyId"/>, a new one-time prekey with that id is
        /// generated, stored and included (publish each id once).</summary>
        public PreKeyBundle PreKeyBundle(uint deviceId, uint? oneTimePreKeyId = null)
        {
            return handle.Use(h =>
            {
                PawlPreKeyBundle b;
                Interop.Check(NativeMethods.pawl_protocol_prekey_bundle(H(h), deviceId,
                    oneTimePreKeyId.HasValue ? (byte)1 : (byte)0, oneTimePreKeyId.GetValueOrDefault(), &b));
                try
                {
                    return new PreKeyBundle
                    {
                        RegistrationId = b.registration_id,
                        DeviceId = b.device_id,
                        PreKeyId = b.has_prekey != 0 ? b.prekey_id : (uint?)null,
                        PreKey = b.has_prekey != 0 ? Interop.Copy(b.prekey) : null,
                        SignedPreKeyId = b.signed_prekey_id,
                        SignedPreKey = Interop.Copy(b.signed_prekey),
                        SignedPreKeySignature = Interop.Copy(b.signed_prekey_signature),
                        IdentityKey = Interop.Copy(b.identity_key),
                    };
                }
                finally
                {
                    NativeMethods.pawl_prekey_bundle_free(b);
                }
            });
        }

        private static PawlBuffer Borrow(byte* p, byte[] bytes)
        {
            return new PawlBuffer { data = p, len = Interop.Len(bytes) };
        }

        /// <summary>Start a session with device <paramref name="deviceId"/> of
        /// <paramref name="name"/> from its bundle (verifies the signature; trusts the
        /// identity on first use; UntrustedIdentity if it changed).</summary>
        public void ProcessPreKeyBundle(string name, uint deviceId, PreKeyBundle bundle)
        {
            if (bundle == null) throw new ArgumentNullException("bundle");
            if (bundle.PreKeyId.HasValue != (bundle.PreKey != null))
                throw new ArgumentException("PreKeyId and PreKey must both be set or both be null", "bundle");
            var n = Interop.Utf8(name, "name");
            handle.Use(h =>
            {
                fixed (byte* np = n, pk = bundle.PreKey, spk = bundle.SignedPreKey,
                       sig = bundle.SignedPreKeySignature, ik = bundle.IdentityKey)
                {
                    var b = new PawlPreKeyBundle
                    {
                        registration_id = bundle.RegistrationId,
                        device_id = bundle.DeviceId,
                        has_prekey = bundle.PreKeyId.HasValue ? (byte)1 : (byte)0,
                        prekey_id = bundle.PreKeyId.GetValueOrDefault(),
                        prekey = Borrow(pk, bundle.PreKey),
                        signed_prekey_id = bundle.SignedPreKeyId,
                        signed_prekey = Borrow(spk, bundle.SignedPreKey),
                        signed_prekey_signature = Borrow(sig, bundle.SignedPreKeySignature),
                        identity_key = Borrow(ik, bundle.IdentityKey),
                    };
                    Interop.Check(NativeMethods.pawl_protocol_process_prekey_bundle(H(h), np, deviceId, &b));
                }
            });
        }

        /// <summary>Whether a session with this device exists.</summary>
        public bool HasSession(string name, uint deviceId)
        {
            var n = Interop.Utf8(name, "name");
            return handle.Use(h =>
            {
                byte exists;
                fixed (byte* np = n)
                    Interop.Check(NativeMethods.pawl_protocol_has_session(H(h), np, deviceId, &exists));
                return exists != 0;
            });
        }

        /// <summary>Encrypt for the device (a session must exist; else NoSession). The new
        /// ratchet state is stored before this returns.</summary>
        public Ciphertext Encrypt(string name, uint deviceId, byte[] plaintext)
        {
            if (plaintext == null) throw new ArgumentNullException("plaintext");
            var n = Interop.Utf8(name, "name");
            return handle.Use(h =>
            {
                byte type;
                PawlBuffer body;
                fixed (byte* np = n, pp = plaintext)
                    Interop.Check(NativeMethods.pawl_protocol_encrypt(H(h), np, deviceId, pp,
                        Interop.Len(plaintext), &type, &body));
                return new Ciphertext(type, Interop.Take(body));
            });
        }

        /// <summary>Decrypt a message from the device. A failed decrypt changes nothing;
        /// a replayed message throws PawlException with DuplicateMessage.</summary>
        public byte[] Decrypt(string name, uint deviceId, Ciphertext ciphertext)
        {
            if (ciphertext == null) throw new ArgumentNullException("ciphertext");
            var n = Interop.Utf8(name, "name");
            return handle.Use(h =>
            {
                PawlBuffer plain;
                fixed (byte* np = n, bp = ciphertext.Body)
                    Interop.Check(NativeMethods.pawl_protocol_decrypt(H(h), np, deviceId,
                        ciphertext.MessageType, bp, Interop.Len(ciphertext.Body), &plain));
                return Interop.Take(plain);
            });
        }

        /// <summary>Release the database.</summary>
        public void Dispose()
        {
            handle.Dispose();
        }
    }
}
