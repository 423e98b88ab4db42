/**
 * What every `auto` setting becomes once the kind of input is known: the method and the
 * encoders' consensus, each chosen by leave-one-dataset-out over the development pool
 * (docs/encoders.md, "Choosing the defaults").
 */
import type { Config, EncodersConfig, Method, RunConfig, SettledEncoders } from './schema.js';

/** What `engine.method: auto` (the default) runs for series and for rows. */
export const AUTO_METHODS = { series: 'hybrid', tabular: 'kmeans' } as const satisfies Record<
  'series' | 'tabular',
  Method
>;

/** The method a fit runs: `auto` by the kind of input, else as configured. */
export function concreteMethod(method: Method | 'auto', series: boolean): Method {
  return method === 'auto' ? AUTO_METHODS[series ? 'series' : 'tabular'] : method;
}

/**
 * What `hybrid` runs on a series where its consensus settings are `auto`: three members, each
 * clustered on its own, then their co-association clustered, with the input block at half an
 * encoder block's share. It cuts the seed spread of one member's answer by 40 %. Everything else
 * keeps one member, stacked, the input at one block's share: rows and the single encoders were not
 * measured better with more, and half the input's share alone was measured worse.
 */
export const SERIES_CONSENSUS = { members: 3, consensus: 'co-association', inputWeight: 0.5 } as const;

const orAuto = <T>(value: T | 'auto', auto: T): T => (value === 'auto' ? auto : value);

/**
 * The encoders' `auto` settings made concrete for a method on a kind of input. k-anonymity
 * (`kAnonymous`) merges small clusters, which a co-association consensus's members would not
 * follow, so there `auto` keeps one member, stacked.
 */
export function settleEncoders(
  encoders: EncodersConfig,
  method: Method,
  series: boolean,
  kAnonymous: boolean,
): SettledEncoders {
  const hybridSeries = method === 'hybrid' && series;
  const vote = hybridSeries && !kAnonymous;
  const members = orAuto(encoders.members, vote ? SERIES_CONSENSUS.members : 1);
  const consensus = orAuto(encoders.consensus, vote ? SERIES_CONSENSUS.consensus : 'stack');
  // Half the input's share was measured better only together with the vote.
  const voting = hybridSeries && members > 1 && consensus === 'co-association';
  const inputWeight = orAuto(encoders.hybrid.inputWeight, voting ? SERIES_CONSENSUS.inputWeight : 1);
  return { ...encoders, members, consensus, hybrid: { ...encoders.hybrid, inputWeight } };
}

/**
 * A configuration settled for an input that is (or is not) a series: the method for that kind of
 * input (a private fit's `auto` is `kmeans`, the one method it can release privately), then the
 * encoders' settings for that method.
 */
export function settleConfig(config: Config, series: boolean): RunConfig {
  const { engine, privacy, encoders } = config;
  const method =
    engine.method === 'auto' && privacy.epsilon !== undefined
      ? 'kmeans'
      : concreteMethod(engine.method, series);
  return {
    ...config,
    engine: { ...engine, method },
    encoders: settleEncoders(encoders, method, series, privacy.minClusterSize !== undefined),
  };
}
