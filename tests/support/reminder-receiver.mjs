// A reminder receiver for `make dev`: listens on 127.0.0.1:8789, verifies each delivery's
// Eka-Webhook-Signature with REMINDER_SIGNING_KEY from .dev.vars, and prints the context.
// Receivers should dedupe on reminderId: delivery is at least once.
import http from 'node:http';
import { verifyHeader } from './eka-signature.mjs';
import { devVar } from '../../scripts/dev-vars.mjs';

const port = Number(process.argv[process.argv.indexOf('--port') + 1]) || 8789;
const key = devVar('REMINDER_SIGNING_KEY');
const seen = new Set();
http.createServer((req, res) => {
  let body = '';
  req.on('data', (c) => { body += c; });
  req.on('end', () => {
    const ok = key ? verifyHeader(body, req.headers['eka-webhook-signature'], key) : true;
    if (!ok) {
      res.writeHead(401).end();
      console.log('reminder receiver: signature did NOT verify; refused');
      return;
    }
    const ctx = JSON.parse(body);
    const dup = seen.has(ctx.reminderId);
    seen.add(ctx.reminderId);
    console.log(`reminder receiver: ${dup ? 'duplicate ' : ''}${ctx.reminderId} for ${ctx.appointmentId}`
      + ` (fireAt ${new Date(ctx.fireAt).toISOString()}, signature ${key ? 'verified' : 'not checked'}),`
      + ` patient ${ctx.patientDetails?.first_name ?? '-'}, clinic ${ctx.clinicDetails?.name ?? '-'}`);
    res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
  });
}).listen(port, '127.0.0.1', () => console.log(`reminder receiver on http://127.0.0.1:${port}/reminders`));
