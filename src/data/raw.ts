/** A table of cells as a reader leaves it, before any interpretation (src/data/table.ts). */

export type Cell = string | number | boolean | null | undefined;

/** Cells as read, before any interpretation. */
export interface RawTable {
  readonly source: string;
  readonly header: readonly string[];
  readonly rows: readonly (readonly Cell[])[];
  /** The human-facing row number of each record in errors (a CSV line, a JSON element). */
  rowNumber(index: number): number;
  /** The decimal mark of its text cells, when the file's dialect says (a `;` file: a comma). */
  readonly decimal?: DecimalMark | undefined;
}

/** The decimal mark of numbers written as text. */
export type DecimalMark = '.' | ',';
