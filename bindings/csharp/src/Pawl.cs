using System;
using System.Collections.Concurrent;
using System.Threading;
using Pawl.Native;

namespace Pawl
{
    /// <summary>Library-wide helpers.</summary>
    public static unsafe class PawlLibrary
    {
        /// <summary>Check a scanned link code; returns the identity key (33 bytes) of the
        /// device it would link, to show before <see cref="PawlClient.LinkDeviceAsync"/>.
        /// A code that is not one throws PawlException (InvalidArgument).</summary>
        public static byte[] ParseLinkCode(string code)
        {
            var c = Interop.Utf8(code, "code");
            PawlBuffer key;
            fixed (byte* cp = c) Interop.Check(NativeMethods.pawl_parse_link_code(cp, &key));
            return Interop.Take(key);
        }

        /// <summary>The native library's version, e.g. <c>0.1.0</c>.</summary>
        public static string Version
        {
            get { return Interop.TakeString(NativeMethods.pawl_version()); }
        }

        /// <summary>The SHA-256 of a DER-encoded certificate: the pin
        /// <see cref="PawlClient.Open"/> takes.</summary>
        public static byte[] CertSha256(byte[] der)
        {
            if (der == null) throw new ArgumentNullException("der");
            PawlBuffer hash;
            fixed (byte* d = der) Interop.Check(NativeMethods.pawl_cert_sha256(d, Interop.Len(der), &hash));
            return Interop.Take(hash);
        }

        /// <summary>The pin of the first certificate in a PEM text (the relay's
        /// <c>--tls-self-signed</c> file, or its certificate chain).</summary>
        public static byte[] PinFromPem(string pem)
        {
            if (pem == null) throw new ArgumentNullException("pem");
            const string begin = "-----BEGIN CERTIFICATE-----", end = "-----END CERTIFICATE-----";
            int b = pem.IndexOf(begin, StringComparison.Ordinal);
            int e = b < 0 ? -1 : pem.IndexOf(end, b, StringComparison.Ordinal);
            if (b < 0 || e < 0)
                throw new PawlException(ErrorCode.InvalidArgument, "no CERTIFICATE block in the PEM text");
            byte[] der;
            try
            {
                der = Convert.FromBase64String(pem.Substring(b + begin.Length, e - b - begin.Length));
            }
            catch (FormatException x)
            {
                throw new PawlException(ErrorCode.InvalidArgument, "the CERTIFICATE block is not base64: " + x.Message);
            }
            return CertSha256(der);
        }
    }

    /// <summary>
    /// Collects a client's events for code that waits for them (tests, scripts, a
    /// background worker): <c>var q = new EventQueue(client); var e = q.WaitFor(...)</c>.
    /// </summary>
    public sealed class EventQueue : IDisposable
    {
        private readonly PawlClient client;
        private readonly BlockingCollection<ClientEvent> events = new BlockingCollection<ClientEvent>();

        /// <summary>Subscribe to <paramref name="client"/>'s events.</summary>
        public EventQueue(PawlClient client)
        {
            this.client = client;
            client.EventReceived += OnEvent;
        }

        private void OnEvent(object sender, ClientEventArgs e)
        {
            events.Add(e.Event);
        }

        /// <summary>The next event, or null after <paramref name="timeout"/>.</summary>
        public ClientEvent Next(TimeSpan timeout)
        {
            ClientEvent e;
            return events.TryTake(out e, timeout) ? e : null;
        }

        /// <summary>Skip events until one matches <paramref name="predicate"/>; throws
        /// TimeoutException after <paramref name="timeout"/>.</summary>
        public T WaitFor<T>(Func<T, bool> predicate, TimeSpan timeout) where T : ClientEvent
        {
            var deadline = DateTime.UtcNow + timeout;
            while (true)
            {
                var left = deadline - DateTime.UtcNow;
                if (left <= TimeSpan.Zero)
                    throw new TimeoutException("no " + typeof(T).Name + " event within " + timeout);
                var e = Next(left) as T;
                if (e != null && predicate(e)) return e;
            }
        }

        /// <summary>Skip events until one of type <typeparamref name="T"/>.</summary>
        public T WaitFor<T>(TimeSpan timeout) where T : ClientEvent
        {
            return WaitFor<T>(_ => true, timeout);
        }

        /// <summary>Unsubscribe.</summary>
        public void Dispose()
        {
            client.EventReceived -= OnEvent;
        }
    }
}
