// Types for eka-webhook-edge (Node ≥ 20; CommonJS require and ESM import).
import type { IncomingMessage, Server, ServerResponse } from 'node:http';

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

export interface VerifyResult {
  valid: boolean;
  reason?: string;
}

/** The Standard Webhooks headers (standardwebhooks.com) that `signPayload` gives for `format: 'standard'`. */
export interface StandardWebhookHeaders {
  'webhook-id': string;
  /** Unix seconds, as text. */
  'webhook-timestamp': string;
  /** `v1,<base64>`, one per secret, space-separated. */
  'webhook-signature': string;
}

/** A request's headers: a plain object (any case; Node's `req.headers`) or a fetch `Headers`. */
export type HeadersLike = Headers | { [name: string]: string | string[] | undefined };

/**
 * `header`: the Eka-Webhook-Signature value, or the request's headers. Headers with
 * `webhook-signature` are verified as Standard Webhooks (`webhook-id`, `webhook-timestamp`;
 * keys are `whsec_` secrets); otherwise their Eka-Webhook-Signature is.
 */
export function verifySignature(
  rawBody: string | Uint8Array,
  header: string | string[] | undefined | HeadersLike,
  signingKey: string | string[],
  opts?: { toleranceSeconds?: number; now?: number },
): VerifyResult;

/** The Eka-Webhook-Signature value: `t=<timestamp>,v1=<hex>` (one `v1` per key). */
export function signPayload(
  rawBody: string | Uint8Array,
  signingKey: string | string[],
  timestamp?: number,
  opts?: { format?: 'eka' },
): string;
/** The Standard Webhooks headers, signed with each `whsec_` secret. `msgId`: 1 to 256 of A-Z a-z 0-9 _ - :. */
export function signPayload(
  rawBody: string | Uint8Array,
  signingKey: string | string[],
  timestamp: number | undefined,
  opts: { format: 'standard'; msgId: string },
): StandardWebhookHeaders;

/** What onEvent receives (and what the Worker forwards). */
export interface WebhookEvent {
  type: string;
  payload: { [key: string]: Json };
  appointmentDetails?: { [key: string]: Json };
  patientDetails?: Json;
  doctorDetails?: Json;
  clinicDetails?: Json;
}

export interface WebhookResult {
  status: number;
  body: { [key: string]: Json };
  event?: WebhookEvent;
  error?: string;
}

export interface Persistence {
  dialect: 'mysql' | 'sqlite';
  /** Runs one statement with `?` placeholders; returns rows (mysql2's [rows, fields] is fine). */
  query(sql: string, params: Array<string | number | null>): unknown;
}

/**
 * Read once by the core (the Worker's settings parser); a wrong type or value throws a
 * TypeError naming the option, never its value.
 */
export interface WebhookSDKConfig {
  clientId: string;
  clientSecret: string;
  apiKey?: string;
  /** One key, several (rotation), or a comma-separated list; none turns verification off. */
  signingKey?: string | string[];
  allowedEvents?: string[];
  onEvent?: (event: WebhookEvent) => void | Promise<void>;
  persistence?: Persistence;
  apiBaseUrl?: string;
  /** Replay window in seconds (default 300; 0 disables). */
  toleranceSeconds?: number;
  debug?: boolean;
  /** Webhook path for listen() (default '/'). */
  path?: string;
  /** Interface for listen() (default '0.0.0.0'). */
  host?: string;
  /** Larger bodies get 413 (default 1 MiB, at most 100 MiB). */
  maxBodyBytes?: number;
  /** Eka API timeout in ms (default 10000, at most 300000). */
  timeoutMs?: number;
  /** Connections held at once by findAppointmentsBetween (default 6, 1 to 64). */
  findConcurrency?: number;
}

export interface AppointmentEntry {
  appointmentId: string;
  appointmentDetails: { [key: string]: Json };
  patientDetails?: Json;
  doctorDetails?: Json;
  clinicDetails?: Json;
}

export interface AppointmentReminderContext {
  reminderId: string;
  appointmentId: string;
  fireAt: number;
  appointmentDetails: { [key: string]: Json };
  patientDetails: Json | null;
  doctorDetails: Json | null;
  clinicDetails: Json | null;
}

export interface Reminder {
  id: string;
  appointmentId: string;
  fireAt: number;
  cancelled: boolean;
  cancel(): void;
}

export class WebhookSDK {
  constructor(config: WebhookSDKConfig);
  handleRequest(body: string | Uint8Array | ArrayBuffer | object, headers?: object): Promise<WebhookResult>;
  findAppointmentsBetween(range: { startTime: number | Date; endTime: number | Date }): Promise<{
    appointments: AppointmentEntry[];
    followupAppointments: AppointmentEntry[];
    failed: string[];
  }>;
  scheduleReminder(options: {
    cronTime: Date | string | number;
    appointmentId: string;
    callback: (context: AppointmentReminderContext) => void | Promise<void>;
  }): Reminder;
  getAppointmentDetailsById(id: string, options?: { partnerId?: string | number }): Promise<{ [key: string]: Json }>;
  getPatientDetailsById(id: string): Promise<Json>;
  getDoctorDetailsById(id: string): Promise<Json>;
  getClinicDetailsById(id: string): Promise<Json>;
  listen(port: number, onListen?: () => void): Server;
  nodeHandler(): (req: IncomingMessage, res: ServerResponse) => Promise<void>;
  fetchHandler(): (request: Request) => Promise<Response>;
}

export class WebhookProcessingError extends Error {
  statusCode: number;
  constructor(message: string, statusCode?: number);
}

export const SUPPORTED_EVENTS: readonly string[];
export const APPOINTMENT_EVENTS: readonly string[];
export const SCHEDULE_TABLE_NAME: 'eka_webhook_schedule_appointment';
export const SIGNATURE_HEADER: 'Eka-Webhook-Signature';
