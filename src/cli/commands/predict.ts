/** `neurocluster predict <file> --model <model.json>`: label new rows with a saved model. */
import { type Command, Option } from 'commander';
import { NeuromorphicClusterer } from '../../clusterer.js';
import { StagedWrites } from '../../core/atomic.js';
import { UsageError } from '../../core/errors.js';
import type { Prediction } from '../../fit/streamed-predict.js';
import type { AuditEvent } from '../../security/audit-record.js';
import { audit, errorDetails, outcomeOf } from '../audit.js';
import { cliConfig, cliLogger, type GlobalFlags } from '../context.js';
import { fileCommand, schemaFlag } from '../options.js';
import { labelsCsv, table } from '../output.js';
import { checkOutputPaths, resultFile, writeOutputs } from '../results.js';

const FLAGS = [
  schemaFlag('--backend <b>', 'engine.backend'),
  schemaFlag('--gpu-adapter <name>', 'engine.webgpu.adapter'),
  schemaFlag('--id-column <name>', 'data.idColumn'),
  schemaFlag('--label-column <name>', 'data.labelColumn'),
  schemaFlag('--series-id <name>', 'data.seriesIdColumn'),
  schemaFlag('--time-column <name>', 'data.timeColumn'),
  schemaFlag('--nan-policy <policy>', 'data.nanPolicy'),
  schemaFlag('--delimiter <c>', 'data.delimiter'),
  schemaFlag('--decimal <mark>', 'data.decimal'),
  schemaFlag('--no-header', 'data.header'),
  schemaFlag('--encrypt-results', 'security.encryptResults'),
  schemaFlag('--allow-unauthenticated-model', 'security.allowUnauthenticatedModels'),
];

interface PredictFlags extends GlobalFlags {
  model: string;
  labelsOut?: string;
  backend?: 'auto' | 'js' | 'wasm' | 'webgpu';
  idColumn?: string;
  labelColumn?: string;
  seriesId?: string;
  timeColumn?: string;
  nanPolicy?: 'error' | 'drop-rows' | 'impute-mean';
}

export function predictCommand(): Command {
  const cmd = fileCommand('predict', 'input data, with the columns the model was fitted on', FLAGS);
  cmd
    .addOption(new Option('--model <model.json>', 'the model file').makeOptionMandatory())
    .addOption(new Option('--labels-out <labels.csv>', 'write one label per row (with ids when known)'))
    .action(async (file: string, _opts: unknown, command: Command) => {
      const flags = command.optsWithGlobals() as PredictFlags;
      const logger = cliLogger(flags);
      const config = await cliConfig(command, FLAGS);
      checkOutputPaths(config, { results: [flags.labelsOut] });
      let clusterer: NeuromorphicClusterer;
      let prediction: Prediction;
      // The labels file is written by `label` (a streamed file's a chunk at a time); encrypted
      // results are written whole below.
      const labelsByPredict =
        flags.labelsOut && !config.security.encryptResults ? flags.labelsOut : undefined;
      // Staged: it is renamed into place once its audit record is written.
      const labelsStage = new StagedWrites();
      try {
        // The running configuration's security section (data roots, limits, trusted models)
        // applies, never the one stored in the model file.
        clusterer = await NeuromorphicClusterer.load(flags.model, {
          logger,
          security: config.security,
          stream: config.stream,
          output: config.output,
          ...(flags.backend ? { backend: flags.backend } : {}),
          data: {
            idColumn: flags.idColumn,
            labelColumn: flags.labelColumn,
            seriesIdColumn: flags.seriesId,
            timeColumn: flags.timeColumn,
            nanPolicy: flags.nanPolicy,
            // How this file is written is this file's, never the training file's.
            delimiter: config.data.delimiter,
            decimal: config.data.decimal,
            header: config.data.header,
          },
        });
        prediction = await labelsStage.run(() =>
          clusterer.label(file, labelsByPredict ? { labelsOut: labelsByPredict } : {}),
        );
      } catch (error) {
        await labelsStage.discard();
        audit(config, [
          {
            action: 'data.read',
            resource: file,
            outcome: outcomeOf(error),
            details: { model: flags.model, ...errorDetails(error) },
          },
        ]);
        throw error;
      }
      const events: AuditEvent[] = [
        { action: 'model.read', resource: flags.model, outcome: 'success' },
        {
          action: 'data.read',
          resource: file,
          outcome: 'success',
          details: { rows: prediction.rows, model: flags.model },
        },
      ];
      const { labels, ids, droppedRows, rows: count } = prediction;
      const inline = labels.length === count;
      const { labelsOut } = flags;
      if (labelsOut && !labelsByPredict && !inline) {
        throw new UsageError(
          `${count} rows is more than output.inlineLabelsMax: encrypted labels are written from memory, so raise it or write them unencrypted`,
          'NEUROCLUSTER_ERR_USAGE',
        );
      }
      await writeOutputs(
        config,
        events,
        labelsOut && !labelsByPredict ? [resultFile(labelsOut, () => labelsCsv(labels, ids), config)] : [],
        labelsByPredict ? [{ stage: labelsStage, action: 'result.write', resource: labelsByPredict }] : [],
      );
      const out = {
        ...(inline ? { labels: Array.from(labels) } : {}),
        rows: count,
        ...(ids ? { ids: [...ids] } : {}),
        k: clusterer.k,
        ...(labelsByPredict ? { labelsFile: labelsByPredict } : {}),
        ...(droppedRows?.length ? { droppedRows: [...droppedRows] } : {}),
      };
      if (flags.json) {
        process.stdout.write(`${JSON.stringify(out)}\n`);
        return;
      }
      const sizes = prediction.sizes;
      const rows: [string, string][] = [
        ['rows', String(count)],
        ['k', String(clusterer.k)],
        ['cluster sizes', sizes.join(' ')],
      ];
      process.stdout.write(table(`neurocluster predict: ${file}`, rows));
    });
  return cmd;
}
