// The ~2 KB Eka payload the benchmarks verify: the documented appointment.created envelope,
// padded with partner_meta entries `value-<i>-<filler>` until it reaches 2,000 bytes.
export function ekaPayload2k(filler) {
  const payload = {
    service: 'appointment', event: 'appointment.created', transaction_id: '8y3458734657', event_time: 1730189586,
    timestamp: 1730189586, client_id: '67978400352a61001d64e9fb', business_id: '174159057718553',
    data: { appointment_id: 'api-abb67007-1e53-4f0f-b428-a4bc025468a4', doctor_id: '174159057723920', patient_id: '174678912588458',
      clinic_id: '67978400352a61001d64e9fb', status: 'BK', action: 'created', created_at: 1730189586, partner_meta: {} },
  };
  for (let i = 0; JSON.stringify(payload).length < 2000; i++) payload.data.partner_meta[`key${i}`] = `value-${i}-${filler}`;
  return payload;
}
