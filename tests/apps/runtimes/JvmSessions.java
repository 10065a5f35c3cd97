// NOT leaking (issue 17). A JVM service whose sessions live TTL_S seconds: every
// 100 ms a 16 KiB session is opened (RATE MiB/min of them) and kept in a queue
// until it expires, so the live set levels off at RATE x TTL_S / 60 MiB after
// TTL_S seconds. Sessions outlive many young collections, so they are promoted
// and die in the old generation; with a large -Xmx the old generation is not
// collected for a long time (G1 starts a marking cycle only near its occupancy
// threshold), and until it is, the dead sessions pile up there and RSS climbs
// as the heap's regions are first touched. Short-lived garbage (~1 MiB/s) keeps
// the young generation collecting.
// Run: java -XX:+UseG1GC -Xmx2g JvmSessions.java [MIB_PER_MIN] [TTL_S]
import java.util.ArrayDeque;

public class JvmSessions {
    record Session(long expires, byte[] data) {}

    public static void main(String[] args) throws Exception {
        double rate = args.length > 0 ? Double.parseDouble(args[0]) : 1.0;
        double ttlS = args.length > 1 ? Double.parseDouble(args[1]) : 600.0;
        ArrayDeque<Session> sessions = new ArrayDeque<>();
        long t0 = System.nanoTime();
        double opened = 0; // bytes of sessions the construction owes so far
        long made = 0;
        long sink = 0;
        while (true) {
            long now = System.nanoTime();
            double s = (now - t0) / 1e9;
            opened = s / 60.0 * rate * 1024 * 1024;
            while (made + 16384 <= opened) {
                byte[] data = new byte[16384];
                java.util.Arrays.fill(data, (byte) 5);
                sessions.addLast(new Session(now + (long) (ttlS * 1e9), data));
                made += 16384;
            }
            while (!sessions.isEmpty() && sessions.peekFirst().expires() <= now) {
                sessions.removeFirst();
            }
            for (int i = 0; i < 25; i++) {
                byte[] g = new byte[4096];
                g[i] = (byte) i;
                sink += g[0] + g.length;
            }
            if (sink == 42) System.out.println(sessions.size());
            Thread.sleep(100);
        }
    }
}
