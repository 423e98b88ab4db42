/**
 * Rendering untrusted text (cells, file names, dataset names) for a terminal or a log line.
 */

/**
 * Renders a cell value for an error message: control characters escaped, at most 40 characters,
 * so that a hostile or binary input cannot garble the terminal or flood the log.
 */
export function quoteValue(value: string, max = 40): string {
  const escaped = printable(JSON.stringify(value).slice(1, -1));
  const cut = escaped.length > max ? `${escaped.slice(0, max - 1)}…` : escaped;
  return `"${cut}"`;
}

/**
 * What a terminal would act on instead of printing: C0 and C1 controls and DEL, the bidirectional
 * controls (U+061C, U+200E/F, U+202A-U+202E, U+2066-U+2069), the line and paragraph separators,
 * and lone surrogates.
 */
const UNPRINTABLE = /[\p{Cc}\p{Bidi_Control}\p{Zl}\p{Zp}\p{Cs}]/gu;
const SHORT_ESCAPES: Readonly<Record<string, string>> = { '\n': '\\n', '\r': '\\r', '\t': '\\t' };

/**
 * Text safe to echo on a terminal: each {@link UNPRINTABLE} character becomes a visible escape
 * (`\n`, `\x1b`, `\u202e`), so a file name or a cell cannot clear the screen, forge a second line
 * or reorder the text around it. Everything else (any script, emoji) is left as it is.
 */
export function printable(text: string): string {
  return text.replace(UNPRINTABLE, (c) => {
    const code = c.charCodeAt(0);
    return (
      SHORT_ESCAPES[c] ??
      (code <= 0xff ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16).padStart(4, '0')}`)
    );
  });
}
