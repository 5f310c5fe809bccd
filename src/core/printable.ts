/**
 * Text from a server (an error body, a store's message) as it may be shown: control characters
 * escaped, so that a carriage return, ESC, BEL or any other C0/C1 character cannot move the
 * cursor, recolour or rewrite a terminal, or start a new line in a CI log (a GitHub Actions log
 * reads a line starting with `::` as a workflow command). Line feeds are escaped too unless
 * `lineFeeds` keeps them (deployctl's own multi-line messages).
 */
export function printable(text: string, { lineFeeds = false }: { lineFeeds?: boolean } = {}): string {
  return text.replace(/[\u0000-\u0008\u000a-\u001f\u007f-\u009f\u2028\u2029]/g, (char) => {
    if (char === '\n') return lineFeeds ? char : '\\n';
    if (char === '\r') return '\\r';
    const code = char.charCodeAt(0);
    return code <= 0xff ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16)}`;
  });
}
