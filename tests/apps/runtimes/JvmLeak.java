// LEAKING (issue 17). A JVM that warms up (a 32 MiB cache filled in the first
// 2 minutes, then capped) and from LEAK_START_S seconds keeps every request's
// 16 KiB "session" in a static list it never clears: RATE MiB/min of heap really
// retained (the arrays are filled, so their pages are touched). Short-lived
// garbage (~1 MiB/s) keeps the young generation collecting.
// Run: java -XX:+UseG1GC -Xms16m -Xmx256m JvmLeak.java [MIB_PER_MIN] [LEAK_START_S]
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

public class JvmLeak {
    static final List<byte[]> SESSIONS = new ArrayList<>();

    public static void main(String[] args) throws Exception {
        double rate = args.length > 0 ? Double.parseDouble(args[0]) : 1.0;
        double startS = args.length > 1 ? Double.parseDouble(args[1]) : 300.0;
        final int cap = 32 * 16; // 32 MiB of 64 KiB entries
        Map<Long, byte[]> cache = new LinkedHashMap<Long, byte[]>(16, 0.75f, true) {
            @Override
            protected boolean removeEldestEntry(Map.Entry<Long, byte[]> e) {
                return size() > cap;
            }
        };
        long t0 = System.nanoTime();
        double leakedBytes = 0; // what the construction owes so far
        long kept = 0;
        long key = 0;
        long sink = 0;
        while (true) {
            double s = (System.nanoTime() - t0) / 1e9;
            if (s < 120 || key % 20 == 0) { // fill for 2 min, then a slow churn
                byte[] v = new byte[64 * 1024];
                java.util.Arrays.fill(v, (byte) 3);
                cache.put(key, v);
            }
            key++;
            if (s >= startS) {
                leakedBytes = (s - startS) / 60.0 * rate * 1024 * 1024;
                while (kept + 16384 <= leakedBytes) {
                    byte[] session = new byte[16384];
                    java.util.Arrays.fill(session, (byte) 7);
                    SESSIONS.add(session);
                    kept += 16384;
                }
            }
            for (int i = 0; i < 25; i++) {
                byte[] g = new byte[4096];
                g[i] = (byte) i;
                sink += g[0] + g.length;
            }
            if (sink == 42) System.out.println(SESSIONS.size());
            Thread.sleep(100);
        }
    }
}
