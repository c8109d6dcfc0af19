package devstack;

import org.apache.logging.log4j.LogManager;
import org.elasticsearch.Build;
import org.elasticsearch.cluster.ClusterState;
import org.elasticsearch.cluster.service.ClusterService;
import org.elasticsearch.common.logging.LogConfigurator;
import org.elasticsearch.common.settings.Settings;
import org.elasticsearch.env.Environment;
import org.elasticsearch.index.IndexVersion;
import org.elasticsearch.node.InternalSettingsPreparer;
import org.elasticsearch.node.Node;
import org.elasticsearch.plugins.PluginsLoader;
import org.elasticsearch.rest.RestController;
import org.elasticsearch.rest.RestHandler;
import org.elasticsearch.rest.RestRequest;
import org.elasticsearch.rest.RestResponse;
import org.elasticsearch.rest.RestStatus;
import org.elasticsearch.xcontent.XContentBuilder;

import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.jar.JarFile;

/**
 * Starts a real single Elasticsearch node for local dev and tests, without a distribution.
 *
 * <p>It does what {@code org.elasticsearch.bootstrap.Elasticsearch#main} does minus the parts that need
 * the distribution (server CLI, entitlement agent, keystore, bootstrap checks, native sandboxing):
 * configure logging, prepare the environment from node settings, load the modules found in
 * {@code <path.home>/modules} and construct + start {@link Node}.
 *
 * <p>Usage: {@code java -cp <server.classpath> devstack.EsLauncher key=value...} with at least
 * {@code path.home}; every argument is a node setting, as {@code -Ekey=value} would be.
 */
public final class EsLauncher {

    // Console-only logging: es.sh redirects stdout into the log file.
    private static final String LOG4J2_PROPERTIES = """
        status = error
        appender.console.type = Console
        appender.console.name = console
        appender.console.layout.type = PatternLayout
        appender.console.layout.pattern = [%d{ISO8601}][%-5p][%-25c{1.}] [%node_name]%marker %m%n
        rootLogger.level = info
        rootLogger.appenderRef.console.ref = console
        """;

    public static void main(String[] args) throws Exception {
        Settings.Builder builder = Settings.builder();
        for (String arg : args) {
            int eq = arg.indexOf('=');
            if (eq <= 0) {
                throw new IllegalArgumentException("expected key=value, got [" + arg + "]");
            }
            builder.put(arg.substring(0, eq), arg.substring(eq + 1));
        }
        Settings settings = builder.build();
        Path home = Path.of(settings.get("path.home", "")).toAbsolutePath();
        Path configDir = home.resolve("config");
        Files.createDirectories(configDir);
        Files.writeString(configDir.resolve("log4j2.properties"), LOG4J2_PROPERTIES);
        writeModuleDescriptor(home.resolve("modules").resolve("transport-netty4"));

        LogConfigurator.registerErrorListener();
        LogConfigurator.setClusterName(settings.get("cluster.name", "elasticsearch"));
        LogConfigurator.setNodeName(settings.get("node.name", "node"));
        Environment env = InternalSettingsPreparer.prepareEnvironment(settings, Map.of(), configDir, () -> "node");
        LogConfigurator.configure(env, true);
        LogManager.getLogger(EsLauncher.class)
            .info("Elasticsearch {} (devstack launcher), JVM {} at {}", Build.current().qualifiedVersion(),
                Runtime.version(), System.getProperty("java.home"));

        try {
            // Same loader the real bootstrap builds: each module gets its own class loader over its jars.
            // withServerExports=false: those are JPMS qualified exports, meaningless on the class path.
            PluginsLoader pluginsLoader = PluginsLoader.createPluginsLoader(
                PluginsLoader.loadModulesBundles(env.modulesDir()),
                PluginsLoader.loadPluginsBundles(env.pluginsDir()),
                Map.of(),
                false
            );
            Node node = new Node(env, pluginsLoader);
            registerRootEndpoint(node);
            // SIGTERM (es.sh stop) -> orderly shutdown: flush shards, release the data dir lock.
            Runtime.getRuntime().addShutdownHook(new Thread(() -> {
                try {
                    node.close();
                    node.awaitClose(30, TimeUnit.SECONDS);
                } catch (Exception e) {
                    e.printStackTrace();
                }
            }, "es-dev-shutdown"));
            node.start();
        } catch (Throwable t) {
            // without this the half-built node's threads would keep a dead JVM around
            LogManager.getLogger(EsLauncher.class).fatal("node failed to start", t);
            System.exit(1);
        }
        // ES's own threads are all daemons (the real bootstrap keeps a dedicated keep-alive thread),
        // so park main until the JVM exits; SIGTERM still runs the shutdown hook above.
        new CountDownLatch(1).await();
    }

    /**
     * {@code GET /} and {@code HEAD /} (client {@code info()} / {@code ping()}) live in the {@code rest-root}
     * module, which is not published to Maven Central. Serve the same document from the node's own
     * build and cluster state; everything else is answered by the server's own REST handlers.
     */
    private static void registerRootEndpoint(Node node) {
        ClusterService clusterService = node.injector().getInstance(ClusterService.class);
        String nodeName = Node.NODE_NAME_SETTING.get(node.settings());
        RestHandler root = (request, channel, client) -> {
            ClusterState state = clusterService.state();
            Build build = Build.current();
            XContentBuilder body = channel.newBuilder();
            if (request.hasParam("pretty") == false) {
                body.prettyPrint().lfAtEnd();
            }
            body.startObject()
                .field("name", nodeName)
                .field("cluster_name", state.getClusterName().value())
                .field("cluster_uuid", state.metadata().clusterUUID())
                .startObject("version")
                .field("number", build.qualifiedVersion())
                .field("build_flavor", build.flavor())
                .field("build_type", build.type().displayName())
                .field("build_hash", build.hash())
                .field("build_date", build.date())
                .field("build_snapshot", build.isSnapshot())
                .field("lucene_version", IndexVersion.current().luceneVersion().toString())
                .field("minimum_wire_compatibility_version", build.minWireCompatVersion())
                .field("minimum_index_compatibility_version", build.minIndexCompatVersion())
                .endObject()
                .field("tagline", "You Know, for Search")
                .endObject();
            channel.sendResponse(new RestResponse(RestStatus.OK, body));
        };
        RestController restController = node.injector().getInstance(RestController.class);
        restController.registerHandler(new RestHandler.Route(RestRequest.Method.GET, "/"), root);
        restController.registerHandler(new RestHandler.Route(RestRequest.Method.HEAD, "/"), root);
    }

    /**
     * Maven puts the module's jars into the directory; its descriptor ships inside the module jar.
     * {@code modulename} is dropped: the server here runs on the class path, not the module path, so
     * the module is loaded as a classic (non-JPMS) plugin, in its own URLClassLoader over those jars.
     */
    private static void writeModuleDescriptor(Path moduleDir) throws IOException {
        Path jar;
        try (var files = Files.list(moduleDir)) {
            jar = files.filter(p -> p.getFileName().toString().matches("transport-netty4-.*\\.jar"))
                .findFirst()
                .orElseThrow(() -> new IllegalStateException("transport-netty4 jar missing in " + moduleDir));
        }
        Properties descriptor = new Properties();
        try (JarFile jarFile = new JarFile(jar.toFile());
             InputStream in = jarFile.getInputStream(jarFile.getEntry("META-INF/es-plugins/transport-netty4/plugin-descriptor.properties"))) {
            descriptor.load(in);
        }
        descriptor.remove("modulename");
        try (var out = Files.newOutputStream(moduleDir.resolve("plugin-descriptor.properties"))) {
            descriptor.store(out, "extracted from " + jar.getFileName() + " by devstack.EsLauncher");
        }
    }
}
