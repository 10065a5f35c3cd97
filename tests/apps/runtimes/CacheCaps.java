// NOT leaking (issue 17). A JVM whose bounded LRU cache (64 KiB entries, cap
// CAP_MIB) fills over FILL_MIN minutes and then caps: every later insert evicts
// the eldest entry. Short-lived garbage (~1 MiB/s) keeps the young generation
// collecting, so G1 expands the heap toward -Xmx and then settles.
// Run: java -XX:+UseG1GC -Xms16m -Xmx256m CacheCaps.java [CAP_MIB] [FILL_MIN]
import java.util.LinkedHashMap;
import java.util.Map;

public class CacheCaps {
    static final int ENTRY = 64 * 1024;

    public static void main(String[] args) throws Exception {
        int capMib = args.length > 0 ? Integer.parseInt(args[0]) : 120;
        double fillMin = args.length > 1 ? Double.parseDouble(args[1]) : 10.0;
        final int cap = capMib * 1024 * 1024 / ENTRY;
        // Entries per 100 ms tick so the cache is full after fillMin minutes.
        double perTick = cap / (fillMin * 600.0);
        Map<Long, byte[]> cache = new LinkedHashMap<Long, byte[]>(16, 0.75f, true) {
            @Override
            protected boolean removeEldestEntry(Map.Entry<Long, byte[]> e) {
                return size() > cap;
            }
        };
        long key = 0;
        double owed = 0;
        long sink = 0;
        while (true) {
            owed += perTick;
            while (owed >= 1) {
                byte[] v = new byte[ENTRY];
                java.util.Arrays.fill(v, (byte) (key & 0x7f | 1));
                cache.put(key++, v);
                owed -= 1;
            }
            // ~100 KiB of garbage per tick (1 MiB/s): requests that come and go.
            for (int i = 0; i < 25; i++) {
                byte[] g = new byte[4096];
                g[i] = (byte) i;
                sink += g[0] + g.length;
            }
            // Reads keep the recent entries warm (access-ordered LRU).
            if (key > 0) cache.get(key - 1 - (sink % Math.max(1, Math.min(key, 64))));
            Thread.sleep(100);
        }
    }
}
