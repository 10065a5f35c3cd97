// NOT leaking (issue 17). A JVM that runs a batch every PERIOD_S seconds: it
// builds BATCH_MIB of live data over the batch's first minute (64 KiB arrays,
// filled, so their pages are touched), holds it to HOLD_S seconds, then drops
// it all. Between batches a trickle of short-lived garbage (GARBAGE_MIB a
// second). Run it with G1's periodic collection
// (-XX:G1PeriodicGCInterval=30000, JEP 346: a collection when none has come for
// that long, which shrinks the heap and returns what it freed), so the heap's
// commits jump up at each batch and fall after it, as a JVM in a container is
// told to give memory back.
// Run: java -XX:+UseG1GC -XX:G1PeriodicGCInterval=30000 -Xms16m -Xmx512m JvmBatch.java [BATCH_MIB] [PERIOD_S] [HOLD_S] [GARBAGE_MIB]
import java.util.ArrayList;
import java.util.List;

public class JvmBatch {
    static final int ENTRY = 64 * 1024;

    public static void main(String[] args) throws Exception {
        int batchMib = args.length > 0 ? Integer.parseInt(args[0]) : 120;
        double periodS = args.length > 1 ? Double.parseDouble(args[1]) : 600;
        double holdS = args.length > 2 ? Double.parseDouble(args[2]) : 180;
        double garbageMib = args.length > 3 ? Double.parseDouble(args[3]) : 0.1;
        int entries = batchMib * 1024 * 1024 / ENTRY;
        // Garbage in 4 KiB objects per 100 ms tick; fractions carried over.
        double garbagePerTick = garbageMib * 1024 / 4 / 10;
        double owed = 0;
        List<byte[]> batch = new ArrayList<>();
        long t0 = System.nanoTime();
        long sink = 0;
        while (true) {
            double s = (System.nanoTime() - t0) / 1e9;
            double inBatch = s % periodS;
            if (inBatch < holdS) {
                // The first minute builds the batch; it stays live to HOLD_S.
                int want = (int) Math.min(entries, Math.ceil(entries * inBatch / 60.0));
                while (batch.size() < want) {
                    byte[] b = new byte[ENTRY];
                    java.util.Arrays.fill(b, (byte) (batch.size() | 1));
                    batch.add(b);
                }
            } else if (!batch.isEmpty()) {
                batch = new ArrayList<>();
            }
            owed += garbagePerTick;
            for (; owed >= 1; owed--) {
                byte[] g = new byte[4096];
                g[(int) (owed) % 4096] = 1;
                sink += g[0] + g.length;
            }
            if (sink == 42) {
                System.out.println(sink);
            }
            Thread.sleep(100);
        }
    }
}
