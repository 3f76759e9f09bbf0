/**
 * The one rule for text that comes in from outside (issue 16), shared by the
 * function kit, the broker ingress, webhook-intake and the event catalogue.
 *
 * - C0 control characters, DEL and C1 controls are refused: PostgreSQL
 *   refuses NUL in text and `\u0000` in jsonb (a 500 before this rule), and
 *   the others are invisible junk in names and mails. Tab, newline and
 *   carriage return are allowed only where a field is multi-line.
 * - Unpaired UTF-16 surrogates are refused: they are not Unicode text, and
 *   PostgreSQL's UTF-8 encoder would silently turn them into U+FFFD.
 * - Free text is normalised to NFC, so "é" typed as e + U+0301 is stored and
 *   compared as the same string as U+00E9 (and length limits count it once).
 *
 * Two ways to apply it: `text()` is the zod string for a free-text field
 * (refuses, then normalises); `textProblemIn()` walks any parsed value and
 * finds a string (or key) that breaks the rule for multi-line text, the net
 * the kit and the other doors put under every input, so a plain
 * `z.string()` can never let a NUL through to a database.
 */
import { z } from 'zod';

// C0 except tab, LF, CR; DEL; C1. `\p{Cs}` with the u flag matches only unpaired surrogates.
const FORBIDDEN = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f]|\p{Cs}/u;
// Single-line text also refuses every line break, tab included.
const FORBIDDEN_SINGLE_LINE = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]|\p{Cs}/u;

const hex = (c: string) => `U+${c.codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')}`;

/** Why `s` breaks the text rule (a message for the field), or undefined when it is fine. */
export function textProblem(s: string, o: { multiline?: boolean } = {}): string | undefined {
  const m = (o.multiline ? FORBIDDEN : FORBIDDEN_SINGLE_LINE).exec(s);
  if (!m) return undefined;
  const c = m[0];
  if (/\p{Cs}/u.test(c)) return 'must be valid Unicode text (it holds an unpaired surrogate)';
  if (/[\t\n\r\u2028\u2029]/.test(c)) return 'must be a single line (no tabs or line breaks)';
  return `must not contain control characters (found ${hex(c)})`;
}

/**
 * A free-text zod string: refuses what `textProblem` refuses (naming the
 * field through zod's path), then normalises to NFC. Chain the field's own
 * rules after it (`text().trim().min(1).max(100)`), so limits count the NFC
 * form. `multiline` allows tab, newline and carriage return.
 */
export function text(o: { multiline?: boolean } = {}) {
  return z
    .string()
    .superRefine((s, ctx) => {
      const problem = textProblem(s, o);
      if (problem) ctx.addIssue({ code: 'custom', message: problem });
    })
    .overwrite((s) => s.normalize('NFC'));
}

/**
 * `s` made to pass the multi-line rule: forbidden characters become U+FFFD.
 * For text the platform writes itself from foreign sources (an error message
 * of a tool or a driver), where refusing would lose the message.
 */
export function cleanText(s: string): string {
  return s.replace(new RegExp(FORBIDDEN.source, 'gu'), '\ufffd').normalize('NFC');
}

/** Where a value breaks the rule: the path (keys and indexes) and the message. */
export type TextProblem = { path: (string | number)[]; message: string };

/**
 * The first string or object key anywhere in `value` (a parsed JSON body, an
 * event's data) that breaks the rule for multi-line text, or undefined.
 * Iterative, so a deeply nested body cannot overflow the stack.
 */
export function textProblemIn(value: unknown): TextProblem | undefined {
  // Each entry points at its parent, so the path is only built for the one problem found.
  type Node = { v: unknown; key?: string | number; parent?: Node };
  const pathOf = (n: Node | undefined) => {
    const path: (string | number)[] = [];
    for (let p = n; p?.parent; p = p.parent) path.push(p.key!);
    return path.reverse();
  };
  const stack: Node[] = [{ v: value }];
  while (stack.length) {
    const node = stack.pop()!;
    const v = node.v;
    if (typeof v === 'string') {
      const message = textProblem(v, { multiline: true });
      if (message) return { path: pathOf(node), message };
    } else if (Array.isArray(v)) {
      for (let i = v.length - 1; i >= 0; i--) stack.push({ v: v[i], key: i, parent: node });
    } else if (v && typeof v === 'object' && !ArrayBuffer.isView(v)) {
      const entries = Object.entries(v);
      for (let i = entries.length - 1; i >= 0; i--) {
        const [k, child] = entries[i];
        const message = textProblem(k, { multiline: true });
        if (message) return { path: pathOf(node), message: `has a key that ${message}` };
        stack.push({ v: child, key: k, parent: node });
      }
    }
  }
  return undefined;
}

/** A TextProblem as `{ field: message }` for HttpError fields; the root is named `root`. */
export function textProblemField(p: TextProblem, root: string): Record<string, string> {
  return { [p.path.length ? p.path.join('.') : root]: p.message };
}
