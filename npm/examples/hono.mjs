// Hono (the same fetchHandler serves Next.js route handlers, Bun and Deno).
import { Hono } from 'hono';
import { serve } from '@hono/node-server';
import { WebhookSDK } from 'eka-webhook-edge';

const sdk = new WebhookSDK({
  clientId: process.env.EKA_CLIENT_ID,
  clientSecret: process.env.EKA_CLIENT_SECRET,
  signingKey: process.env.EKA_SIGNING_KEY,
  apiBaseUrl: process.env.EKA_API_BASE_URL,
  onEvent: (event) => console.log('event', event.type, event.appointmentDetails?.appointment_id),
});

const handle = sdk.fetchHandler();
const app = new Hono();
app.post('/eka/webhook', (c) => handle(c.req.raw));
serve({ fetch: app.fetch, port: Number(process.env.PORT ?? 3000), hostname: process.env.HOST ?? '0.0.0.0' },
  () => console.log('listening'));
