// The broker's request counters, read over JMX from the running Kafka process.
//
//     java bench/KafkaRequests.java <pid of the Kafka JVM>
//
// Attaches to the JVM (same user), starts its local management agent if it is not
// running, and prints one JSON object: the cumulative count of each request type
// (Fetch, Produce, OffsetCommit, Heartbeat, ...) from
// kafka.network:type=RequestMetrics,name=RequestsPerSec, and the broker-wide topic
// counters (messages in, fetch and produce requests counted per partition) from
// kafka.server:type=BrokerTopicMetrics. bench/kafka_requests.py takes the difference
// over a step. Run with a JDK (the source launcher needs jdk.compiler).

import com.sun.tools.attach.VirtualMachine;
import java.util.Map;
import java.util.TreeMap;
import javax.management.MBeanServerConnection;
import javax.management.ObjectName;
import javax.management.remote.JMXConnector;
import javax.management.remote.JMXConnectorFactory;
import javax.management.remote.JMXServiceURL;

public class KafkaRequests {
    public static void main(String[] args) throws Exception {
        VirtualMachine vm = VirtualMachine.attach(args[0]);
        String url;
        try {
            url = vm.startLocalManagementAgent();
        } finally {
            vm.detach();
        }
        Map<String, Long> counts = new TreeMap<>();
        try (JMXConnector connector = JMXConnectorFactory.connect(new JMXServiceURL(url))) {
            MBeanServerConnection server = connector.getMBeanServerConnection();
            ObjectName requests = new ObjectName(
                "kafka.network:type=RequestMetrics,name=RequestsPerSec,*");
            for (ObjectName name : server.queryNames(requests, null)) {
                long count = ((Number) server.getAttribute(name, "Count")).longValue();
                counts.merge(name.getKeyProperty("request"), count, Long::sum);
            }
            for (String metric : new String[] {"MessagesInPerSec", "TotalFetchRequestsPerSec",
                                               "TotalProduceRequestsPerSec"}) {
                ObjectName name = new ObjectName("kafka.server:type=BrokerTopicMetrics,name="
                                                 + metric);
                long count = ((Number) server.getAttribute(name, "Count")).longValue();
                counts.put("partitions:" + metric.replace("PerSec", ""), count);
            }
        }
        StringBuilder json = new StringBuilder("{");
        for (Map.Entry<String, Long> e : counts.entrySet()) {
            if (json.length() > 1) {
                json.append(',');
            }
            json.append('"').append(e.getKey()).append("\":").append(e.getValue());
        }
        System.out.println(json.append('}'));
    }
}
