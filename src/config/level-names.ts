/** The levels a configuration is checked at (see levels.ts), apart from the checks, for the CLI's start. */
export const CONFIG_LEVELS = ['strict', 'moderate', 'permissive'] as const;
export type ConfigLevel = (typeof CONFIG_LEVELS)[number];
