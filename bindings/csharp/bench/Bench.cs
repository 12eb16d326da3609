// Per-call overhead of the C# binding (Mono): the same measurement as
// bindings/python/bench.py and `cargo run -p pawl-ffi --example overhead`.
using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Linq;
using Pawl;

internal static class Bench
{
    private static double PerCall(int n, Action f)
    {
        var sw = Stopwatch.StartNew();
        for (int i = 0; i < n; i++) f();
        return sw.Elapsed.TotalMilliseconds * 1000.0 / n;
    }

    private static int Main()
    {
        var key = Enumerable.Repeat((byte)7, 32).ToArray();
        using (var alice = PawlProtocol.Open(":memory:", key))
        using (var bob = PawlProtocol.Open(":memory:", key))
        {
            alice.ProcessPreKeyBundle("bob", 1, bob.PreKeyBundle(1, 1));
            bob.Decrypt("alice", 1, alice.Encrypt("bob", 1, new byte[] { 1 }));
            alice.Decrypt("bob", 1, bob.Encrypt("alice", 1, new byte[] { 2 }));

            var der = new byte[32];
            for (int i = 0; i < 1000; i++) { var v = PawlLibrary.Version; PawlLibrary.CertSha256(der); }
            double version = PerCall(100000, () => { var v = PawlLibrary.Version; });
            double sha = PerCall(100000, () => PawlLibrary.CertSha256(der));
            var plaintext = new byte[100];
            const int n = 2000;
            var msgs = new List<Ciphertext>(n);
            double enc = PerCall(n, () => msgs.Add(alice.Encrypt("bob", 1, plaintext)));
            int next = 0;
            double dec = PerCall(n, () => bob.Decrypt("alice", 1, msgs[next++]));
            Console.WriteLine("c# version()        {0,8:F2} us/call", version);
            Console.WriteLine("c# cert_sha256(32B) {0,8:F2} us/call", sha);
            Console.WriteLine("c# encrypt(100B)    {0,8:F2} us/call", enc);
            Console.WriteLine("c# decrypt(100B)    {0,8:F2} us/call", dec);
        }
        return 0;
    }
}
