import { z } from 'zod';
import { ModelInvalidError, ValidationError, describeError } from '../errors';
import { parseWith } from '../validation';
import { ENCODER_STATE_SCHEMA, FEATURE_SCHEMA_VERSION, FeatureEncoder } from './features';
import { MODEL_METADATA_SCHEMA, type ModelMetadata } from './metadata';
import type { Forest } from './randomForest';
import { LEAF, MAX_FEATURES, type Tree } from './tree';
import type { TrainedModel } from './trainedModel';
import { decodeTypedArray, encodeTypedArray } from './typedArrays';

/**
 * The model artifact: one JSON document holding the metadata, the encoder and the trees, the
 * trees as base64 typed arrays (about 7 bytes a node before base64). Loading checks every index a
 * prediction will follow, so a loaded model cannot read out of bounds or loop.
 */
export const ARTIFACT_FORMAT = 'green-ml/random-forest';
export const ARTIFACT_FORMAT_VERSION = 1;

const base64 = z.string();
/** The trees as stored; shared with the declared-pipeline artifact (shared/pipelines). */
export const FOREST_JSON_SCHEMA = z.strictObject({
  classes: z.array(z.string()).min(1).max(255),
  features: z.number().int().min(1).max(MAX_FEATURES),
  trees: z
    .array(z.strictObject({ feature: base64, threshold: base64, child: base64, leafValues: base64 }))
    .min(1),
});
const ARTIFACT_SCHEMA = z.strictObject({
  format: z.literal(ARTIFACT_FORMAT),
  formatVersion: z.literal(ARTIFACT_FORMAT_VERSION),
  metadata: MODEL_METADATA_SCHEMA,
  encoder: ENCODER_STATE_SCHEMA,
  forest: FOREST_JSON_SCHEMA,
});

const texts = new WeakMap<TrainedModel, string>();

/** Serializes a model. The text is cached per model object, so sizing then uploading costs one pass. */
export function serializeModel(model: TrainedModel): string {
  const cached = texts.get(model);
  if (cached !== undefined) return cached;
  const text = render(model.metadata, model.encoder, model.forest);
  texts.set(model, text);
  return text;
}

/**
 * Builds a model whose metadata.sizeBytes is the byte length of its own artifact (a fixed point:
 * the digits of the size are part of the size).
 */
export function sealModel(
  metadata: Omit<ModelMetadata, 'sizeBytes'>,
  encoder: FeatureEncoder,
  forest: Forest,
): { model: TrainedModel; text: string } {
  const body = renderBody(encoder, forest);
  const bodyBytes = Buffer.byteLength(body);
  let sizeBytes = 0;
  let head = '';
  for (let attempt = 0; attempt < 10; attempt++) {
    head = renderHead({ ...metadata, sizeBytes });
    const total = Buffer.byteLength(head) + bodyBytes;
    if (total === sizeBytes) break;
    sizeBytes = total;
  }
  const model: TrainedModel = { metadata: { ...metadata, sizeBytes }, encoder, forest };
  const text = head + body;
  texts.set(model, text);
  return { model, text };
}

function renderHead(metadata: ModelMetadata): string {
  return `{"format":${JSON.stringify(ARTIFACT_FORMAT)},"formatVersion":${ARTIFACT_FORMAT_VERSION},"metadata":${JSON.stringify(metadata)}`;
}

function renderBody(encoder: FeatureEncoder, forest: Forest): string {
  return `,"encoder":${JSON.stringify(encoder.toJSON())},"forest":${JSON.stringify(forestToJson(forest))}}`;
}

export function forestToJson(forest: Forest): z.input<typeof FOREST_JSON_SCHEMA> {
  const trees = forest.trees.map((tree) => ({
    feature: encodeTypedArray(tree.feature),
    threshold: encodeTypedArray(tree.threshold),
    child: encodeTypedArray(tree.child),
    leafValues: encodeTypedArray(tree.leafValues),
  }));
  return { classes: forest.classes, features: forest.features, trees };
}

function render(metadata: ModelMetadata, encoder: FeatureEncoder, forest: Forest): string {
  return renderHead(metadata) + renderBody(encoder, forest);
}

/** Loads an artifact; anything malformed, truncated or inconsistent is a ModelInvalidError. */
export function deserializeModel(text: string): TrainedModel {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (cause) {
    throw new ModelInvalidError(
      `Model artifact is not JSON (truncated or corrupted?): ${describeError(cause)}`,
      { cause },
    );
  }
  const format = (json as { format?: unknown; formatVersion?: unknown } | null) ?? {};
  if (format.format === ARTIFACT_FORMAT && format.formatVersion !== ARTIFACT_FORMAT_VERSION) {
    throw new ModelInvalidError(
      `Model artifact format version ${String(format.formatVersion)} is not supported (expected ${ARTIFACT_FORMAT_VERSION})`,
    );
  }
  let artifact: z.output<typeof ARTIFACT_SCHEMA>;
  try {
    artifact = parseWith(ARTIFACT_SCHEMA, json, 'model artifact');
  } catch (error) {
    if (error instanceof ValidationError) {
      throw new ModelInvalidError(error.message, { cause: error, details: { issues: error.issues } });
    }
    throw error;
  }
  const { metadata } = artifact;
  if (metadata.featureSchemaVersion !== FEATURE_SCHEMA_VERSION) {
    throw new ModelInvalidError(
      `Model ${metadata.versionId} uses feature schema ${metadata.featureSchemaVersion}, this code reads ${FEATURE_SCHEMA_VERSION} (retrain it)`,
    );
  }
  try {
    const encoder = FeatureEncoder.fromJSON(artifact.encoder);
    const forest = decodeForest(artifact.forest, encoder);
    if (
      metadata.classes.length !== forest.classes.length ||
      metadata.classes.some((c, i) => c !== forest.classes[i])
    ) {
      throw new ModelInvalidError('metadata classes differ from the forest classes');
    }
    const model: TrainedModel = { metadata, encoder, forest };
    texts.set(model, text);
    return model;
  } catch (cause) {
    throw new ModelInvalidError(
      `Model artifact ${metadata.versionId} is inconsistent: ${describeError(cause)}`,
      {
        cause,
      },
    );
  }
}

/** Decodes and bounds-checks trees against the encoder that feeds them (any with these two fields). */
export function decodeForest(
  json: z.output<typeof FOREST_JSON_SCHEMA>,
  encoder: Pick<FeatureEncoder, 'featureCount' | 'binCounts'>,
): Forest {
  if (json.features !== encoder.featureCount) {
    throw new ModelInvalidError(
      `the forest reads ${json.features} features, the encoder makes ${encoder.featureCount}`,
    );
  }
  const K = json.classes.length;
  const trees = json.trees.map((t, i) => {
    const tree: Tree = {
      feature: decodeTypedArray(t.feature, Uint8Array, `tree ${i} feature`),
      threshold: decodeTypedArray(t.threshold, Uint16Array, `tree ${i} threshold`),
      child: decodeTypedArray(t.child, Uint32Array, `tree ${i} child`),
      leafValues: decodeTypedArray(t.leafValues, Uint16Array, `tree ${i} leafValues`),
    };
    checkTree(tree, i, K, encoder.binCounts);
    return tree;
  });
  return { classes: json.classes, features: json.features, trees };
}

function checkTree(tree: Tree, i: number, classCount: number, binCounts: Uint16Array): void {
  const nodes = tree.feature.length;
  if (nodes === 0 || tree.threshold.length !== nodes || tree.child.length !== nodes) {
    throw new ModelInvalidError(`tree ${i} has arrays of different lengths or no nodes`);
  }
  if (tree.leafValues.length === 0 || tree.leafValues.length % classCount !== 0) {
    throw new ModelInvalidError(
      `tree ${i} leaf values are not a whole number of ${classCount}-class vectors`,
    );
  }
  const vectors = tree.leafValues.length / classCount;
  for (let node = 0; node < nodes; node++) {
    const f = tree.feature[node];
    const child = tree.child[node];
    if (f === LEAF) {
      if (child >= vectors)
        throw new ModelInvalidError(`tree ${i} node ${node} points at a missing leaf vector`);
    } else {
      if (f >= binCounts.length)
        throw new ModelInvalidError(`tree ${i} node ${node} splits on unknown feature ${f}`);
      if (tree.threshold[node] >= binCounts[f])
        throw new ModelInvalidError(`tree ${i} node ${node} threshold out of range`);
      // Children after their parent: every walk moves forward and ends at a leaf.
      if (child <= node || child + 1 >= nodes)
        throw new ModelInvalidError(`tree ${i} node ${node} has invalid children`);
    }
  }
}
