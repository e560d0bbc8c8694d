package sellerer.graphx;

import org.apache.spark.api.java.JavaRDD;
import org.apache.spark.graphx.Edge;
import org.apache.spark.graphx.Graph;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructType;
import org.apache.spark.storage.StorageLevel;
import scala.Tuple2;
import scala.reflect.ClassTag;
import scala.reflect.ClassTag$;

/**
 * Bridge from a DataFrame edge list to Spark GraphX's connected components.
 *
 * <p>PySpark has no Python API for GraphX, and GraphX's Scala API needs RDDs of Scala tuples and
 * ClassTags that py4j cannot build; this class is the smallest adapter that lets the Python
 * pipeline run the real GraphX algorithm. It adds no algorithm of its own.
 *
 * <p>Input: a DataFrame with long columns {@code src} and {@code dst}. Output: a DataFrame
 * {@code (id long, component long)} with one row per vertex that appears in an edge; the
 * component is the smallest vertex id in it (GraphX's label propagation keeps the minimum), so
 * the labelling does not depend on partitioning or row order.
 */
public final class ConnectedComponents {

  private ConnectedComponents() {}

  public static Dataset<Row> run(Dataset<Row> edges, int maxIterations, String storageLevel) {
    StorageLevel level = StorageLevel.fromString(storageLevel);
    JavaRDD<Edge<Object>> graphEdges =
        edges
            .select("src", "dst")
            .javaRDD()
            .map(row -> new Edge<Object>(row.getLong(0), row.getLong(1), Boolean.TRUE));

    ClassTag<Object> anyTag = ClassTag$.MODULE$.apply(Object.class);
    Graph<Object, Object> graph =
        Graph.fromEdges(graphEdges.rdd(), Boolean.TRUE, level, level, anyTag, anyTag);
    Graph<Object, Object> components =
        org.apache.spark.graphx.lib.ConnectedComponents.run(graph, maxIterations, anyTag, anyTag);

    JavaRDD<Row> rows =
        components
            .vertices()
            .toJavaRDD()
            .map(
                (Tuple2<Object, Object> vertex) ->
                    RowFactory.create((Long) vertex._1(), (Long) vertex._2()));
    StructType schema =
        new StructType()
            .add("id", DataTypes.LongType, false)
            .add("component", DataTypes.LongType, false);
    // GraphX caches the input graph and the labelled one at `level` and never releases them;
    // a run calls connected components several times (clustering, each round of cluster
    // control, the blocking diagnostics), and the caches left behind took the memory later
    // stages needed (measured at 100,000 accounts: "Failed to allocate a page" and a stage 4x
    // slower). So the result (two longs per vertex) is cached and counted, and the graphs are
    // released.
    Dataset<Row> result =
        SparkSession.active().createDataFrame(rows, schema).persist(level);
    result.count();
    components.unpersist(false);
    graph.unpersist(false);
    return result;
  }
}
