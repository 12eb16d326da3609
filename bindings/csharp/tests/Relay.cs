using System;
using System.Diagnostics;
using System.IO;
using System.Net;
using System.Net.Sockets;
using System.Threading;

namespace Pawl.Tests
{
    /// <summary>A pawl-relay process on loopback with a self-signed certificate (the
    /// binary from PAWL_RELAY_BIN), its registration codes in a directory.</summary>
    internal sealed class Relay : IDisposable
    {
        private readonly Process process;
        public readonly string Dir;
        public readonly string Url;
        public readonly byte[] Pin;

        public Relay()
        {
            var binary = Environment.GetEnvironmentVariable("PAWL_RELAY_BIN");
            if (string.IsNullOrEmpty(binary) || !File.Exists(binary))
                throw new InvalidOperationException("PAWL_RELAY_BIN must name the pawl-relay binary (run-tests.sh sets it)");
            Dir = Path.Combine(Path.GetTempPath(), "pawl-cs-" + Guid.NewGuid().ToString("N"));
            Directory.CreateDirectory(Path.Combine(Dir, "codes"));
            int port = FreePort();
            var pem = Path.Combine(Dir, "relay.pem");
            var info = new ProcessStartInfo(binary,
                string.Format("--db sqlite:{0} --listen 127.0.0.1:{1} --tls-self-signed {2} --code-dir {3}",
                    Path.Combine(Dir, "relay.db"), port, pem, Path.Combine(Dir, "codes")))
            {
                UseShellExecute = false,
                RedirectStandardOutput = true,
                RedirectStandardError = true,
            };
            process = Process.Start(info);
            process.OutputDataReceived += (s, e) => { };
            process.ErrorDataReceived += (s, e) => { };
            process.BeginOutputReadLine();
            process.BeginErrorReadLine();
            var deadline = DateTime.UtcNow.AddSeconds(20);
            while (true)
            {
                if (process.HasExited)
                    throw new InvalidOperationException("pawl-relay exited with " + process.ExitCode);
                if (File.Exists(pem) && new FileInfo(pem).Length > 0 && CanConnect(port)) break;
                if (DateTime.UtcNow > deadline) throw new TimeoutException("pawl-relay did not start");
                Thread.Sleep(50);
            }
            Url = "wss://127.0.0.1:" + port + "/v1/ws";
            Pin = PawlLibrary.PinFromPem(File.ReadAllText(pem));
        }

        public string CodeFor(string phone)
        {
            return File.ReadAllText(Path.Combine(Dir, "codes", phone + ".code")).Trim();
        }

        private static int FreePort()
        {
            var l = new TcpListener(IPAddress.Loopback, 0);
            l.Start();
            int port = ((IPEndPoint)l.LocalEndpoint).Port;
            l.Stop();
            return port;
        }

        private static bool CanConnect(int port)
        {
            try
            {
                using (var c = new TcpClient())
                {
                    c.Connect(IPAddress.Loopback, port);
                    return true;
                }
            }
            catch (SocketException)
            {
                return false;
            }
        }

        public void Dispose()
        {
            try
            {
                if (!process.HasExited) process.Kill();
                process.WaitForExit(5000);
            }
            catch (InvalidOperationException)
            {
            }
            try
            {
                Directory.Delete(Dir, true);
            }
            catch (IOException)
            {
            }
        }
    }
}
