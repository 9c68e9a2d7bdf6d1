// Standalone server: POST / and GET /eka-webhook-health.
import { WebhookSDK } from 'eka-webhook-edge';

const sdk = new WebhookSDK({
  clientId: process.env.EKA_CLIENT_ID,
  clientSecret: process.env.EKA_CLIENT_SECRET,
  signingKey: process.env.EKA_SIGNING_KEY,
  apiBaseUrl: process.env.EKA_API_BASE_URL, // optional: https://api.eka.care by default
  host: process.env.HOST, // optional: 0.0.0.0 by default
  onEvent: (event) => console.log('event', event.type, event.appointmentDetails?.appointment_id),
});

sdk.listen(Number(process.env.PORT ?? 3000), () => console.log('listening'));
