// Creates the missing Noria topics in ONE JVM (instead of one TopicCommand JVM per topic).
// Run by scripts/infra/kafka.sh through Java's single-file source launcher:
//   java -cp 'libs/*' KafkaTopics.java BOOTSTRAP PARTITIONS REPLICATION_FACTOR TOPIC...
// Idempotent: existing topics are left alone (a warning is printed when one has fewer
// partitions than asked for). Exit code 0 when every topic exists at the end.
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.concurrent.ExecutionException;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.common.errors.TopicExistsException;

public class KafkaTopics {
    public static void main(String[] args) throws Exception {
        if (args.length < 4) {
            System.err.println("usage: KafkaTopics BOOTSTRAP PARTITIONS REPLICATION_FACTOR TOPIC...");
            System.exit(2);
        }
        String bootstrap = args[0];
        int partitions = Integer.parseInt(args[1]);
        short replication = Short.parseShort(args[2]);
        List<String> wanted = Arrays.asList(args).subList(3, args.length);

        Properties props = new Properties();
        props.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        props.put(AdminClientConfig.CLIENT_ID_CONFIG, "noria-infra-topics");
        props.put(AdminClientConfig.REQUEST_TIMEOUT_MS_CONFIG, 15000);
        props.put(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, 60000);

        try (Admin admin = Admin.create(props)) {
            Set<String> existing = admin.listTopics().names().get();
            List<NewTopic> missing = new ArrayList<>();
            for (String t : wanted) {
                if (!existing.contains(t)) {
                    missing.add(new NewTopic(t, partitions, replication));
                }
            }
            List<String> created = new ArrayList<>();
            if (!missing.isEmpty()) {
                Map<String, org.apache.kafka.common.KafkaFuture<Void>> results =
                        admin.createTopics(missing).values();
                for (Map.Entry<String, org.apache.kafka.common.KafkaFuture<Void>> e : results.entrySet()) {
                    try {
                        e.getValue().get();
                        created.add(e.getKey());
                    } catch (ExecutionException ex) {
                        if (!(ex.getCause() instanceof TopicExistsException)) {
                            throw ex;
                        }
                    }
                }
            }
            Map<String, TopicDescription> described = admin.describeTopics(wanted).allTopicNames().get();
            for (TopicDescription d : described.values()) {
                if (d.partitions().size() < partitions) {
                    System.err.printf("[infra] WARNING: topic %s has %d partitions (expected %d)%n",
                            d.name(), d.partitions().size(), partitions);
                }
            }
            System.out.printf("[infra] Kafka topics: %d created%s, %d already present%n",
                    created.size(),
                    created.isEmpty() ? "" : " (" + String.join(", ", created) + ")",
                    wanted.size() - created.size());
        }
    }
}
