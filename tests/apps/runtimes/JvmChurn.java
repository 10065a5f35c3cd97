// NOT leaking (issue 17). A JVM service with a bounded live set: LIVE_MIB of
// 64 KiB arrays filled over the first minute, then one entry replaced at random
// every 100 ms (old objects die, so the old generation churns too), and
// GARBAGE_MIB of short-lived garbage a second (requests that come and go).
// Nothing is kept beyond the live set: what the heap does with it is the
// collector's sizing (Parallel GC grows the heap by its throughput goal; G1 with
// -Xms = -Xmx touches its committed regions for the first time as it uses them).
// Run: java -XX:+UseParallelGC -Xms16m -Xmx256m JvmChurn.java [LIVE_MIB] [GARBAGE_MIB]
import java.util.Random;

public class JvmChurn {
    static final int ENTRY = 64 * 1024;

    public static void main(String[] args) throws Exception {
        int liveMib = args.length > 0 ? Integer.parseInt(args[0]) : 64;
        double garbageMib = args.length > 1 ? Double.parseDouble(args[1]) : 2.0;
        byte[][] live = new byte[liveMib * 1024 * 1024 / ENTRY][];
        Random rng = new Random(42);
        // 4 KiB garbage objects per 100 ms tick for garbageMib MiB/s.
        int garbagePerTick = (int) Math.round(garbageMib * 1024 / 4 / 10);
        int filled = 0;
        int fillPerTick = Math.max(1, live.length / 600);
        long sink = 0;
        while (true) {
            if (filled < live.length) {
                for (int i = 0; i < fillPerTick && filled < live.length; i++) {
                    live[filled] = new byte[ENTRY];
                    java.util.Arrays.fill(live[filled], (byte) (filled | 1));
                    filled++;
                }
            } else {
                int i = rng.nextInt(live.length);
                live[i] = new byte[ENTRY];
                java.util.Arrays.fill(live[i], (byte) (i | 1));
            }
            for (int i = 0; i < garbagePerTick; i++) {
                byte[] g = new byte[4096];
                g[i % 4096] = (byte) i;
                sink += g[0] + g.length;
            }
            if (sink == 42) System.out.println(sink);
            Thread.sleep(100);
        }
    }
}
