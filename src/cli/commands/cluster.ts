/** `neurocluster cluster <file> --k <n> ...`: fit, print the summary or the JSON, write outputs. */
import { type Command, Option } from 'commander';
import { NeuromorphicClusterer } from '../../clusterer.js';
import { StagedWrites } from '../../core/atomic.js';
import { UsageError } from '../../core/errors.js';
import { resultPlot } from '../../fit/plot.js';
import type { AuditEvent } from '../../security/audit-record.js';
import { audit, errorDetails, outcomeOf } from '../audit.js';
import { cliConfig, cliLogger, type GlobalFlags } from '../context.js';
import { fileCommand, schemaFlag } from '../options.js';
import { formatNumber, labelsCsv, ProgressBar, passFraction, passLabel, table } from '../output.js';
import { checkOutputPaths, type Output, resultFile, writeOutputs } from '../results.js';

const FLAGS = [
  schemaFlag('-k, --k <n>', 'kmeans.nClusters'),
  schemaFlag('--method <m>', 'engine.method'),
  schemaFlag('--backend <b>', 'engine.backend'),
  schemaFlag('--gpu-adapter <name>', 'engine.webgpu.adapter'),
  schemaFlag('--seed <n>', 'engine.seed'),
  schemaFlag('--label-column <name>', 'data.labelColumn'),
  schemaFlag('--id-column <name>', 'data.idColumn'),
  schemaFlag('--series-id <name>', 'data.seriesIdColumn'),
  schemaFlag('--time-column <name>', 'data.timeColumn'),
  schemaFlag('--series-length <T>', 'data.seriesLength'),
  schemaFlag('--nan-policy <policy>', 'data.nanPolicy'),
  schemaFlag('--delimiter <c>', 'data.delimiter'),
  schemaFlag('--decimal <mark>', 'data.decimal'),
  schemaFlag('--no-header', 'data.header'),
  schemaFlag('--no-standardize', 'data.standardize'),
  schemaFlag('--n-init <n>', 'kmeans.nInit'),
  schemaFlag('--max-iter <n>', 'kmeans.maxIter'),
  schemaFlag('--tol <x>', 'kmeans.tol'),
  schemaFlag('--algorithm <a>', 'kmeans.algorithm'),
  // The encoders' main sizes (the rest in a configuration file: docs/encoders.md).
  schemaFlag('--units <n>', 'encoders.esn.units'),
  schemaFlag('--snn-neurons <n>', 'encoders.snn.neurons'),
  schemaFlag('--lsm-neurons <n>', 'encoders.lsm.neurons'),
  schemaFlag('--components <n>', 'encoders.hybrid.components'),
  schemaFlag('--timeout <duration>', 'timeout'),
  schemaFlag('--no-fallback', 'fallback.enabled'),
  schemaFlag('--epsilon <e>', 'privacy.epsilon'),
  schemaFlag('--delta <d>', 'privacy.delta'),
  schemaFlag('--bounds <ranges>', 'privacy.bounds'),
  schemaFlag('--dataset <id>', 'privacy.dataset'),
  schemaFlag('--min-cluster-size <n>', 'privacy.minClusterSize'),
  schemaFlag('--small-clusters <strategy>', 'privacy.smallClusters'),
  schemaFlag('--encrypt-results', 'security.encryptResults'),
];

interface ClusterFlags extends GlobalFlags {
  out?: string;
  labelsOut?: string;
  plot?: string;
  saveModel?: string;
}

export function clusterCommand(): Command {
  const cmd = fileCommand('cluster', 'input data', FLAGS);
  cmd
    .addOption(new Option('--out <result.json>', 'write the result JSON here'))
    .addOption(new Option('--labels-out <labels.csv>', 'write one label per row (with ids when known)'))
    .addOption(
      new Option('--plot <file.svg>', 'write an SVG scatter plot of the clusters in two PCA dimensions'),
    )
    .addOption(new Option('--save-model <model.json>', 'write the fitted model for later predict'))
    .action(async (file: string, _opts: unknown, command: Command) => {
      const flags = command.optsWithGlobals() as ClusterFlags;
      const config = await cliConfig(command, FLAGS);
      // Before the fit (and its privacy charge): an output the run could not write.
      checkOutputPaths(config, { results: [flags.out, flags.labelsOut, flags.plot], model: flags.saveModel });
      const logger = cliLogger(flags, config);
      const clusterer = new NeuromorphicClusterer({ config, logger });
      const bar = new ProgressBar();
      // The fit writes the labels file itself (a streamed fit, a chunk at a time); encrypted
      // results are written whole below, from the labels in the result.
      const labelsByFit = flags.labelsOut && !config.security.encryptResults ? flags.labelsOut : undefined;
      // Staged: it is renamed into place with the other outputs, once their audit records are written.
      const labelsStage = new StagedWrites();
      const fitting = labelsStage.run(() =>
        clusterer.fit(file, {
          ...(labelsByFit ? { labelsOut: labelsByFit } : {}),
          onProgress: (p) => {
            if (p.type === 'iteration')
              bar.update(
                (p.run + p.iteration / config.kmeans.maxIter) / config.kmeans.nInit,
                `restart ${p.run + 1}/${config.kmeans.nInit}`,
              );
            else if (p.type === 'minibatch') bar.update(p.step / p.steps, `mini-batch step ${p.step}`);
            else if (p.type === 'encode')
              bar.update(p.done / p.total, `encoding (${p.encoder}) ${p.done}/${p.total}`);
            else if (p.type === 'pass') bar.update(passFraction(p), passLabel(p));
          },
        }),
      );
      const result = await fitting.catch(async (error: unknown) => {
        await labelsStage.discard();
        // The failed read (or the refused spend) is audited before the error is reported.
        const failed: AuditEvent[] = [
          { action: 'data.read', resource: file, outcome: outcomeOf(error), details: errorDetails(error) },
        ];
        if (config.privacy.epsilon !== undefined && outcomeOf(error) === 'denied') {
          failed.push({
            action: 'privacy.spend',
            resource: config.privacy.dataset ?? file,
            outcome: 'denied',
            details: { epsilon: config.privacy.epsilon, ...errorDetails(error) },
          });
        }
        audit(config, failed);
        throw error;
      });
      bar.done();
      const json = result.toJSON();

      // The read (and the spend) happened: they are audited whether the outputs are written or not.
      const events: AuditEvent[] = [
        {
          action: 'data.read',
          resource: file,
          outcome: 'success',
          details: { rows: result.rows, method: result.method, backend: result.backend },
        },
      ];
      if (result.privacy) {
        const p = result.privacy;
        events.push({
          action: 'privacy.spend',
          resource: p.dataset,
          outcome: 'success',
          details: { epsilon: p.epsilon, delta: p.delta ?? null, spent: p.spent, remaining: p.remaining },
        });
      }
      const outputs: Output[] = [];
      if (flags.out) outputs.push(resultFile(flags.out, () => `${JSON.stringify(json)}\n`, config));
      if (flags.labelsOut && !labelsByFit) {
        if (result.labels.length !== result.rows) {
          throw new UsageError(
            `${result.rows} rows is more than output.inlineLabelsMax: encrypted labels are written from memory, so raise it or write them unencrypted`,
            'NEUROCLUSTER_ERR_USAGE',
          );
        }
        outputs.push(resultFile(flags.labelsOut, () => labelsCsv(result.labels, result.ids), config));
      }
      if (flags.plot) {
        const plot = () =>
          resultPlot(result, clusterer.runtime.registry, `${file}: ${result.method}, k = ${result.k}`);
        outputs.push(resultFile(flags.plot, plot, config));
      }
      const model = flags.saveModel;
      if (model) {
        outputs.push({
          action: 'model.write',
          resource: model,
          write: async () => {
            await clusterer.save(model);
            return undefined;
          },
        });
      }
      await writeOutputs(
        config,
        events,
        outputs,
        labelsByFit ? [{ stage: labelsStage, action: 'result.write', resource: labelsByFit }] : [],
      );

      if (flags.json) {
        process.stdout.write(`${JSON.stringify(json)}\n`);
        return;
      }
      const sizes = result.sizes();
      const rows: [string, string][] = [
        ['rows', String(result.rows)],
        ['k', String(result.k)],
        ['method', result.method],
        ['backend', result.backend],
        ...(result.fallback
          ? [
              ['fallback', `CPU K-means (${result.fallback.reason}: ${result.fallback.code})`] as [
                string,
                string,
              ],
            ]
          : []),
        ['cluster sizes', sizes.join(' ')],
        ['silhouette', formatNumber(result.quality.silhouette)],
        ['Calinski-Harabasz', formatNumber(result.quality.calinskiHarabasz)],
        ['Davies-Bouldin', formatNumber(result.quality.daviesBouldin)],
        ['inertia', formatNumber(result.quality.inertia)],
      ];
      if (result.external) {
        rows.push(['ARI', formatNumber(result.external.ari)], ['NMI', formatNumber(result.external.nmi)]);
        rows.push(['Rand index', formatNumber(result.external.randIndex)]);
      }
      if (result.droppedRows?.length) rows.push(['dropped rows', String(result.droppedRows.length)]);
      if (result.privacy) {
        const p = result.privacy;
        rows.push([
          'privacy',
          `epsilon ${p.epsilon}${p.delta === undefined ? '' : `, delta ${p.delta}`} (${p.mechanism}); dataset budget ${p.budget}: spent ${p.spent}, remaining ${p.remaining}`,
        ]);
      }
      if (result.anonymity && result.anonymity.clustersAfter !== result.anonymity.clustersBefore) {
        const a = result.anonymity;
        rows.push([
          'k-anonymity',
          `${a.clustersBefore} clusters released as ${a.clustersAfter} (min size ${a.minClusterSize}; ${a.merged.length} merged, ${a.suppressedRows} rows suppressed)`,
        ]);
      }
      for (const g of result.qualityGates ?? []) {
        rows.push([`gate ${g.gate}`, `failed: ${formatNumber(g.value)} < ${g.threshold}`]);
      }
      rows.push(['time', `${result.timings.total.toFixed(3)} s`]);
      for (const [what, path] of [
        ['result', flags.out],
        ['labels', flags.labelsOut],
        ['plot', flags.plot],
        ['model', flags.saveModel],
      ] as const) {
        if (path) rows.push([what, path]);
      }
      process.stdout.write(table(`neurocluster: ${file}`, rows));
    });
  return cmd;
}
