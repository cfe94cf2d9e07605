// Text from agents and peers (log lines, abort messages, a peer's refusal, its capability names)
// reaches an operator's terminal: its control characters are shown escaped, never acted on. A
// terminal acts on C0 and C1 controls and DEL (escape sequences can clear the screen, move the
// cursor, set the clipboard; a carriage return can forge a log line), and the bidirectional
// overrides reorder what is shown.
// eslint-disable-next-line no-control-regex -- matching them is the point
const UNPRINTABLE = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/g;
// eslint-disable-next-line no-control-regex -- matching them is the point
const UNPRINTABLE_OR_NEWLINE = /[\u0000-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/g;

const escape = (c: string): string => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`;

/** Whether `s` holds a character printable() escapes (a newline included). */
export function hasUnprintable(s: string): boolean {
  UNPRINTABLE_OR_NEWLINE.lastIndex = 0;
  return UNPRINTABLE_OR_NEWLINE.test(s);
}

/** `s` with every control character escaped (`\u001b`); newlines too unless `keepNewlines`. */
export function printable(s: string, keepNewlines = false): string {
  return s.replace(keepNewlines ? UNPRINTABLE : UNPRINTABLE_OR_NEWLINE, escape);
}
