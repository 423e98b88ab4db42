/** `neurocluster score <file> --labels <labels.csv>`: the internal metrics of a given labelling. */
import { type Command, Option } from 'commander';
import { parse } from 'csv-parse/sync';
import { encodeLabels, externalQuality, internalQuality } from '../../cluster/metrics.js';
import { DataError, isNeuroclusterError } from '../../core/errors.js';
import { decodeText } from '../../data/text.js';
import { defaultRuntime, selectionContext } from '../../runtime/runtime.js';
import { loadWithinLimits, type ReadLimits, readWithinLimits } from '../../security/secure-load.js';
import { audit, errorDetails, outcomeOf } from '../audit.js';
import { cliConfig, cliLogger, type GlobalFlags } from '../context.js';
import { fileCommand, parseInteger, schemaFlag } from '../options.js';
import { formatNumber, table } from '../output.js';

const FLAGS = [
  schemaFlag('--label-column <name>', 'data.labelColumn'),
  schemaFlag('--id-column <name>', 'data.idColumn'),
  schemaFlag('--series-length <T>', 'data.seriesLength'),
  schemaFlag('--nan-policy <policy>', 'data.nanPolicy'),
  schemaFlag('--delimiter <c>', 'data.delimiter'),
  schemaFlag('--decimal <mark>', 'data.decimal'),
  schemaFlag('--no-header', 'data.header'),
  schemaFlag('--seed <n>', 'engine.seed'),
  schemaFlag('--backend <b>', 'engine.backend'),
  schemaFlag('--gpu-adapter <name>', 'engine.webgpu.adapter'),
];

interface ScoreFlags extends GlobalFlags {
  labels: string;
  sampleSize?: number;
}

/**
 * Reads a labels file for n rows: one label per line, with or without a header line (told apart by
 * the count), or a CSV with a header whose `label` column holds them. It is held to the data roots
 * and the size limit like the data file, and read from the one descriptor checked.
 */
export async function readLabels(path: string, n: number, limits: ReadLimits): Promise<string[]> {
  let bytes: Uint8Array;
  try {
    bytes = await readWithinLimits(path, limits);
  } catch (cause) {
    if (isNeuroclusterError(cause)) throw cause;
    throw new DataError('NEUROCLUSTER_ERR_DATA_READ', `cannot read labels: ${(cause as Error).message}`, {
      cause,
      location: { file: path },
    });
  }
  let records: string[][];
  try {
    records = parse(decodeText(bytes, path), { bom: true, skip_empty_lines: true, trim: true });
  } catch (cause) {
    throw new DataError(
      'NEUROCLUSTER_ERR_DATA_FORMAT',
      `malformed labels file: ${(cause as Error).message}`,
      {
        cause,
        location: { file: path },
      },
    );
  }
  const header = records[0] ?? [];
  let column = 0;
  let body = records;
  if (header.length > 1) {
    column = header.indexOf('label');
    if (column < 0) {
      throw new DataError(
        'NEUROCLUSTER_ERR_DATA_FORMAT',
        'a labels file with several columns needs a "label" column',
        {
          location: { file: path, row: 1 },
        },
      );
    }
    body = records.slice(1);
  } else if (records.length === n + 1) {
    body = records.slice(1);
  }
  if (body.length !== n) {
    throw new DataError(
      'NEUROCLUSTER_ERR_DATA_SHAPE',
      `labels file has ${body.length} labels for ${n} data rows`,
      {
        location: { file: path },
      },
    );
  }
  return body.map((r) => r[column] ?? '');
}

export function scoreCommand(): Command {
  const cmd = fileCommand('score', 'input data', FLAGS);
  cmd
    .addOption(new Option('--labels <labels.csv>', 'the labels, one per data row').makeOptionMandatory())
    .addOption(
      new Option('--sample-size <n>', 'silhouette on a seeded sample of n rows').argParser(parseInteger),
    )
    .action(async (file: string, _opts: unknown, command: Command) => {
      const flags = command.optsWithGlobals() as ScoreFlags;
      const config = await cliConfig(command, FLAGS);
      const logger = cliLogger(flags, config);
      // The data roots and limits hold here as everywhere; the read is audited either way.
      let dataset: Awaited<ReturnType<typeof loadWithinLimits>>;
      try {
        dataset = await loadWithinLimits(file, config.data, config.security, logger);
      } catch (error) {
        audit(config, [
          { action: 'data.read', resource: file, outcome: outcomeOf(error), details: errorDetails(error) },
        ]);
        throw error;
      }
      audit(config, [
        {
          action: 'data.read',
          resource: file,
          outcome: 'success',
          details: { rows: dataset.n, command: 'score' },
        },
      ]);
      let labels: string[];
      try {
        labels = await readLabels(flags.labels, dataset.n, config.security);
      } catch (error) {
        audit(config, [
          {
            action: 'data.read',
            resource: flags.labels,
            outcome: outcomeOf(error),
            details: { ...errorDetails(error), role: 'labels' },
          },
        ]);
        throw error;
      }
      const { codes, count } = encodeLabels(labels);
      if (flags.sampleSize !== undefined && (flags.sampleSize < 2 || flags.sampleSize > dataset.n)) {
        throw new DataError('NEUROCLUSTER_ERR_DATA_SHAPE', `--sample-size must be in [2, ${dataset.n}]`);
      }
      const { backend } = await defaultRuntime().registry.select(
        config.engine.backend,
        logger,
        selectionContext(config.engine, dataset.values.length),
      );
      const points = { rows: dataset.n, cols: dataset.width, data: dataset.values };
      const q = await internalQuality(backend, points, codes, {
        // `score` is exact unless a sample size is given.
        silhouetteExactMaxSamples: Number.MAX_SAFE_INTEGER,
        sampleSize: flags.sampleSize,
        seed: config.engine.seed,
      });
      const out = {
        n: dataset.n,
        k: count,
        silhouette: q.silhouette,
        calinskiHarabasz: q.calinskiHarabasz,
        daviesBouldin: q.daviesBouldin,
        ...(flags.sampleSize !== undefined ? { sampleSize: flags.sampleSize } : {}),
        ...(dataset.truth ? { external: externalQuality(dataset.truth, labels) } : {}),
      };
      if (flags.json) {
        process.stdout.write(`${JSON.stringify(out)}\n`);
        return;
      }
      const rows: [string, string][] = [
        ['rows', String(out.n)],
        ['clusters', String(out.k)],
        ['silhouette', formatNumber(out.silhouette)],
        ['Calinski-Harabasz', formatNumber(out.calinskiHarabasz)],
        ['Davies-Bouldin', formatNumber(out.daviesBouldin)],
      ];
      if (out.external)
        rows.push(['ARI', formatNumber(out.external.ari)], ['NMI', formatNumber(out.external.nmi)]);
      process.stdout.write(table(`neurocluster score: ${file}`, rows));
    });
  return cmd;
}
