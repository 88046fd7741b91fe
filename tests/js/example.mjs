// The original request's JavaScript example, as written, against the service at
// ES_URL; then one embedding through the endpoint it made. Prints JSON lines.
import { Client } from "@elastic/elasticsearch";

const client = new Client({ node: process.env.ES_URL });

const response = await client.inference.put({
  task_type: "text_embedding",
  inference_id: "hugging-face-embeddings",
  inference_config: {
    service: "hugging_face",
    service_settings: {
      api_key: process.env.HF_ACCESS_TOKEN,
      url: process.env.HF_ENDPOINT_URL,
    },
  },
});
console.log(JSON.stringify(response));

const embedded = await client.inference.textEmbedding({
  inference_id: "hugging-face-embeddings",
  input: ["The quick brown fox", "jumps over the lazy dog"],
});
console.log(JSON.stringify(embedded));

try {
  await client.inference.get({ inference_id: "no-such-endpoint" });
} catch (error) {
  console.log(JSON.stringify({ name: error.name, status: error.meta?.statusCode }));
}
