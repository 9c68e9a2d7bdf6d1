// Express: give the SDK the raw body (express.raw), so the signature is checked on the exact bytes.
import express from 'express';
import { WebhookSDK } from 'eka-webhook-edge';

const sdk = new WebhookSDK({
  clientId: process.env.EKA_CLIENT_ID,
  clientSecret: process.env.EKA_CLIENT_SECRET,
  signingKey: process.env.EKA_SIGNING_KEY,
  apiBaseUrl: process.env.EKA_API_BASE_URL,
  onEvent: (event) => console.log('event', event.type, event.appointmentDetails?.appointment_id),
});

const app = express();
app.post('/eka/webhook', express.raw({ type: 'application/json' }), sdk.nodeHandler());
app.listen(Number(process.env.PORT ?? 3000), process.env.HOST ?? '0.0.0.0', () => console.log('listening'));
