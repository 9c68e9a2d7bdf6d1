// Reads a JSON array of base64 texts on stdin; prints one line per text: the base64 of
// JSON.stringify(JSON.parse(text)) as UTF-8, or "ERR" when JSON.parse throws.
let input = '';
process.stdin.setEncoding('utf8');
process.stdin.on('data', (chunk) => { input += chunk; });
process.stdin.on('end', () => {
  const out = JSON.parse(input).map((b64) => {
    const text = Buffer.from(b64, 'base64').toString('utf8');
    try {
      return Buffer.from(JSON.stringify(JSON.parse(text)), 'utf8').toString('base64');
    } catch {
      return 'ERR';
    }
  });
  process.stdout.write(out.join('\n'));
});
