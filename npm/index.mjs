// ESM entry: the same module as `require('eka-webhook-edge')`.
import sdk from './index.cjs';

export const {
  WebhookSDK, WebhookProcessingError, verifySignature, signPayload,
  SUPPORTED_EVENTS, APPOINTMENT_EVENTS, SCHEDULE_TABLE_NAME, SIGNATURE_HEADER,
} = sdk;
export default sdk;
