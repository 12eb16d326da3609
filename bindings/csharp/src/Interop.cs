// Marshalling between .NET and Pawl's C ABI (ffi/src/capi.rs): UTF-8 strings in,
// caller-owned buffers out (copied, then released), status codes turned into
// PawlException. C# 7.2, so it builds with Mono's mcs and for netstandard2.0.
using System;
using System.Runtime.InteropServices;
using System.Text;
using Pawl.Native;

namespace Pawl
{
    internal static unsafe class Interop
    {
        /// <summary>NUL-terminated UTF-8 for a <c>const char *</c> argument.</summary>
        internal static byte[] Utf8(string value, string name)
        {
            if (value == null) throw new ArgumentNullException(name);
            if (value.IndexOf('\0') >= 0)
                throw new ArgumentException("must not contain NUL characters", name);
            var bytes = new byte[Encoding.UTF8.GetByteCount(value) + 1];
            Encoding.UTF8.GetBytes(value, 0, value.Length, bytes, 0);
            return bytes;
        }

        /// <summary>Throw the PawlException for a non-zero status (on the calling
        /// thread, right after the call: the message is that thread's last error).</summary>
        internal static void Check(uint status)
        {
            if (status == 0) return;
            string message = TakeString(NativeMethods.pawl_last_error_message());
            throw new PawlException((ErrorCode)status, message);
        }

        /// <summary>Copy a buffer Pawl returned, then release it.</summary>
        internal static byte[] Take(PawlBuffer buffer)
        {
            try
            {
                return Copy(buffer);
            }
            finally
            {
                NativeMethods.pawl_buffer_free(buffer);
            }
        }

        internal static string TakeString(PawlBuffer buffer)
        {
            return Encoding.UTF8.GetString(Take(buffer));
        }

        /// <summary>Copy a buffer that is released with the struct holding it.</summary>
        internal static byte[] Copy(PawlBuffer buffer)
        {
            int len = checked((int)buffer.len.ToUInt64());
            var bytes = new byte[len];
            if (len > 0) Marshal.Copy((IntPtr)buffer.data, bytes, 0, len);
            return bytes;
        }

        internal static string CopyString(PawlBuffer buffer)
        {
            return Encoding.UTF8.GetString(Copy(buffer));
        }

        internal static UIntPtr Len(byte[] bytes)
        {
            return new UIntPtr((uint)(bytes == null ? 0 : bytes.Length));
        }

        internal static ChatMessage Message(PawlMessage* m)
        {
            return new ChatMessage(
                m->id,
                m->chat_id,
                CopyString(m->sender),
                m->sender_device,
                m->outgoing != 0,
                m->has_text != 0 ? CopyString(m->text) : null,
                Copy(m->body),
                m->sent_at,
                m->received_at == 0 ? (long?)null : m->received_at,
                (MessageStatus)m->status,
                m->has_media != 0 ? Media(&m->media) : null);
        }

        internal static Attachment AttachmentOf(PawlMedia* m)
        {
            return new Attachment
            {
                Kind = (MediaKind)m->kind,
                BlobId = Copy(m->blob_id),
                MediaKey = Copy(m->media_key),
                FileSha256 = Copy(m->file_sha256),
                FileEncSha256 = Copy(m->file_enc_sha256),
                FileLength = m->file_length,
            };
        }

        internal static MediaMessage Media(PawlMedia* m)
        {
            return new MediaMessage
            {
                Attachment = AttachmentOf(m),
                MimeType = CopyString(m->mime_type),
                FileName = CopyString(m->file_name),
                Caption = CopyString(m->caption),
                Thumbnail = Copy(m->thumbnail),
                Width = m->width,
                Height = m->height,
            };
        }

        /// <summary>Run <paramref name="call"/> with a PawlMedia whose buffers point at
        /// the (pinned) arrays of <paramref name="media"/>.</summary>
        internal static T WithMedia<T>(MediaMessage media, Func<IntPtr, T> call)
        {
            if (media == null) throw new ArgumentNullException("media");
            var a = media.Attachment;
            if (a == null) throw new ArgumentNullException("media.Attachment");
            var arrays = new[]
            {
                a.BlobId ?? new byte[0], a.MediaKey ?? new byte[0], a.FileSha256 ?? new byte[0],
                a.FileEncSha256 ?? new byte[0],
                Encoding.UTF8.GetBytes(media.MimeType ?? ""), Encoding.UTF8.GetBytes(media.FileName ?? ""),
                Encoding.UTF8.GetBytes(media.Caption ?? ""), media.Thumbnail ?? new byte[0],
            };
            var pins = new GCHandle[arrays.Length];
            try
            {
                var buffers = new PawlBuffer[arrays.Length];
                for (int i = 0; i < arrays.Length; i++)
                {
                    pins[i] = GCHandle.Alloc(arrays[i], GCHandleType.Pinned);
                    buffers[i] = new PawlBuffer
                    {
                        data = arrays[i].Length == 0 ? null : (byte*)pins[i].AddrOfPinnedObject(),
                        len = Len(arrays[i]),
                    };
                }
                var m = new PawlMedia
                {
                    kind = (uint)a.Kind,
                    blob_id = buffers[0],
                    media_key = buffers[1],
                    file_sha256 = buffers[2],
                    file_enc_sha256 = buffers[3],
                    file_length = a.FileLength,
                    mime_type = buffers[4],
                    file_name = buffers[5],
                    caption = buffers[6],
                    thumbnail = buffers[7],
                    width = media.Width,
                    height = media.Height,
                };
                return call((IntPtr)(&m));
            }
            finally
            {
                foreach (var pin in pins)
                    if (pin.IsAllocated) pin.Free();
            }
        }

        internal static ChatMessage[] TakeMessages(PawlMessageList list)
        {
            try
            {
                int n = checked((int)list.len.ToUInt64());
                var result = new ChatMessage[n];
                for (int i = 0; i < n; i++) result[i] = Message(list.items + i);
                return result;
            }
            finally
            {
                NativeMethods.pawl_message_list_free(list);
            }
        }

        internal static ClientEvent TakeEvent(PawlEvent e)
        {
            try
            {
                return ClientEvent.FromNative(&e);
            }
            finally
            {
                NativeMethods.pawl_event_free(e);
            }
        }
    }

    /// <summary>A native handle released exactly once, after the last call using it
    /// has returned (SafeHandle reference counting), whichever thread disposes.</summary>
    internal sealed class NativeHandle : SafeHandle
    {
        private readonly Action<IntPtr> release;

        internal NativeHandle(IntPtr handle, Action<IntPtr> release)
            : base(IntPtr.Zero, true)
        {
            this.release = release;
            SetHandle(handle);
        }

        public override bool IsInvalid
        {
            get { return handle == IntPtr.Zero; }
        }

        protected override bool ReleaseHandle()
        {
            release(handle);
            return true;
        }

        /// <summary>Run a native call with the handle kept alive for its duration.</summary>
        internal T Use<T>(Func<IntPtr, T> call)
        {
            bool added = false;
            try
            {
                DangerousAddRef(ref added);
                return call(DangerousGetHandle());
            }
            catch (ObjectDisposedException)
            {
                throw new ObjectDisposedException("a Pawl object used after Dispose");
            }
            finally
            {
                if (added) DangerousRelease();
            }
        }

        internal void Use(Action<IntPtr> call)
        {
            Use<bool>(h =>
            {
                call(h);
                return true;
            });
        }
    }
}
