using System;
using System.Threading.Tasks;
using Pawl.Native;

namespace Pawl
{
    /// <summary>A code for the new device's screen (show <see cref="QrPng"/> until it
    /// expires; <see cref="PawlLinking.NextCodeAsync"/> gives the next one).</summary>
    public sealed class LinkCode
    {
        /// <summary>The text in the QR code (<c>pawl-link:1,...</c>). It holds the link
        /// secret: show it, never send it anywhere.</summary>
        public string Code { get; internal set; }

        /// <summary>The QR code as a PNG.</summary>
        public byte[] QrPng { get; internal set; }
    }

    /// <summary>
    /// A new device waiting to be linked to an account (from
    /// <see cref="PawlClient.StartLinkingAsync"/>). Show each code until the phone has
    /// scanned one, then await <see cref="FinishedAsync"/> and start the client.
    /// </summary>
    /// <example>
    /// <code>
    /// using (var linking = await desktop.StartLinkingAsync())
    /// {
    ///     var code = await linking.NextCodeAsync();   // show code.QrPng
    ///     uint deviceId = await linking.FinishedAsync();
    ///     desktop.Start();
    /// }
    /// </code>
    /// </example>
    public sealed unsafe class PawlLinking : IDisposable
    {
        private readonly NativeHandle handle;

        internal PawlLinking(IntPtr raw)
        {
            handle = new NativeHandle(raw, h => NativeMethods.pawl_linking_free((PawlLinkingHandle*)h));
        }

        /// <summary>The next code to show; null once the phone has answered or the codes
        /// ran out.</summary>
        public Task<LinkCode> NextCodeAsync()
        {
            return Task.Run(() => handle.Use(h =>
            {
                PawlBuffer code, png;
                Interop.Check(NativeMethods.pawl_linking_next_code((PawlLinkingHandle*)h, &code, &png));
                var text = Interop.TakeString(code);
                var image = Interop.Take(png);
                return text.Length == 0 ? null : new LinkCode { Code = text, QrPng = image };
            }));
        }

        /// <summary>Completes when the phone has linked this device: its device id.</summary>
        public Task<uint> FinishedAsync()
        {
            return Task.Run(() => handle.Use(h =>
            {
                uint device;
                Interop.Check(NativeMethods.pawl_linking_finished((PawlLinkingHandle*)h, &device));
                return device;
            }));
        }

        /// <summary>Release the native handle.</summary>
        public void Dispose()
        {
            handle.Dispose();
        }
    }
}
