/** A model saved on one machine (one NEUROCLUSTER_HOME, one keyring) predicts on another after export and import. */
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { generateIdentity, identityToRecipient } from 'age-encryption';
import { describe, expect, it } from 'vitest';
import { runCli, tempDir } from '../helpers.js';
import { IRIS } from './scratch.js';

describe('a model that travels', () => {
  it('is refused with the way to move it, then predicts as it did after export and import', async () => {
    const dir = tempDir();
    const here = (args: string[]) => runCli(args, { home: join(dir, 'home-a') });
    const there = (args: string[]) => runCli(args, { home: join(dir, 'home-b') });
    const model = join(dir, 'iris.model');
    const fit = here(['cluster', IRIS, '-k', '3', '--method', 'esn', '--save-model', model, '--json']);
    expect(fit.code, fit.stderr).toBe(0);

    const refused = there(['predict', IRIS, '--model', model, '--json']);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(
      /is not in the keyring .*another keyring.*neurocluster model export .*neurocluster model import/,
    );

    const identity = await generateIdentity();
    const key = join(dir, 'key.txt');
    writeFileSync(
      key,
      `# created: now\n# public key: ${await identityToRecipient(identity)}\n${identity}\n`,
      { mode: 0o600 },
    );
    const exported = join(dir, 'iris.model.age');
    const recipient = await identityToRecipient(identity);
    expect(here(['model', 'export', model, '--recipient', recipient, '--out', exported]).code).toBe(0);
    const imported = join(dir, 'iris.imported.model');
    const imp = there(['model', 'import', exported, '--identity', key, '--to', imported, '--json']);
    expect(imp.code, imp.stderr).toBe(0);
    expect(JSON.parse(imp.stdout)).toEqual({ imported });
    const predicted = there(['predict', IRIS, '--model', imported, '--json']);
    expect(predicted.code, predicted.stderr).toBe(0);
    expect(JSON.parse(predicted.stdout).labels).toEqual(JSON.parse(fit.stdout).labels);

    // Another identity does not open it, and nothing is written.
    const stranger = join(dir, 'stranger.txt');
    writeFileSync(stranger, `${await generateIdentity()}\n`, { mode: 0o600 });
    const wrong = there([
      'model',
      'import',
      exported,
      '--identity',
      stranger,
      '--to',
      join(dir, 'never.model'),
    ]);
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toMatch(/does not decrypt with the identity/);
    expect(existsSync(join(dir, 'never.model'))).toBe(false);
  });
});
