//! The pipeline through a ledger that keeps intakes (issue 20): one ledger call before the
//! answer ([`Pipeline::take_in`]), and the rest run by the ledger itself ([`Pipeline::resume`]).

use futures::future::{select, Either};

use super::{EnrichedEvent, Outcome, Pipeline};
use crate::eka::enrich::enrich;
use crate::signing::signature::MacProvider;
use crate::support::http::{Clock, HttpClient};
use crate::webhook::event::{EventKind, WebhookEvent};
use crate::webhook::ledger::{
    Attempt, Claim, Commit, Effects, EventLedger, Intake, IntakeMode, Settled,
};
use crate::webhook::pipeline::EventSink;

impl<H, C, L, D, M> Pipeline<'_, H, C, L, D, M>
where
    H: HttpClient,
    C: Clock,
    L: EventLedger,
    D: EventSink,
    M: MacProvider,
{
    /// The webhook through a ledger that keeps intakes: one ledger call before the answer.
    /// Nothing to enrich (and nothing to deliver now): the intake is the commit. Otherwise
    /// the appointment fetch starts together with the intake and is dropped if the intake
    /// says duplicate or in flight; the commit is left for after the answer
    /// ([`Outcome::deferred`]), unless a sink delivers during the webhook (then it precedes
    /// the delivery, as always).
    pub(super) async fn take_in(&self, event: WebhookEvent, claim: Claim, body: &[u8]) -> Outcome {
        let enriched = matches!(event.kind, EventKind::Enrich { .. });
        if !enriched && !self.sink.delivers() {
            let mut accepted = EnrichedEvent::plain(&event);
            let outgoing = accepted.to_json();
            let intake = Intake {
                claim: &claim,
                body,
                mode: IntakeMode::Whole,
                outgoing: Some(&outgoing),
            };
            let claimed = self.ledger.intake(&intake).await;
            return match self.stop_or_go(claimed, &event.event_type) {
                Err(out) => *out,
                Ok((event_id, _)) => {
                    accepted.event_id.clone_from(&event_id);
                    Outcome {
                        event_id,
                        ..Outcome::answer(200, accepted.success_body(), None)
                    }
                    .with_event(accepted)
                }
            };
        }
        let (ids, found) = {
            let intake = Intake {
                claim: &claim,
                body,
                mode: IntakeMode::Worker,
                outgoing: None,
            };
            let claimed = std::pin::pin!(self.ledger.intake(&intake));
            let fetch = std::pin::pin!(async {
                match &event.kind {
                    EventKind::Enrich { appointment_id } => {
                        Some(enrich(self.client, appointment_id, event.data(), false).await)
                    }
                    _ => None,
                }
            });
            match select(claimed, fetch).await {
                Either::Left((claimed, fetch)) => match self.stop_or_go(claimed, &event.event_type)
                {
                    // The fetch is dropped unfinished.
                    Err(out) => return *out,
                    Ok(ids) => (ids, fetch.await),
                },
                Either::Right((found, claimed)) => {
                    match self.stop_or_go(claimed.await, &event.event_type) {
                        Err(out) => return *out,
                        Ok(ids) => (ids, found),
                    }
                }
            }
        };
        self.effects(event, &claim, ids, body, found, true).await
    }

    /// The rest of a webhook a ledger kept ([`IntakeMode`]), run by the ledger itself (its
    /// Worker never committed, or a gate's origin took it): the body was verified on
    /// receipt, so only parsing and the allowed-events check are repeated; the commit is made
    /// here, before anything leaves. A body that no longer passes is recorded as failed.
    pub async fn resume(
        &self,
        event_id: &str,
        claim: Claim,
        reprocess: bool,
        body: &[u8],
    ) -> Outcome {
        let ids = (Some(event_id.to_owned()), reprocess);
        match self.parse_stored(body) {
            Ok(event) => self.effects(event, &claim, ids, body, None, false).await,
            Err(e) => {
                let failed = Commit {
                    event_id: Some(event_id),
                    claim: &claim,
                    attempt: Attempt::ended(Settled::Failed, e.status(), Some(e.code()), reprocess),
                    effects: &Effects::default(),
                    body,
                    outgoing: None,
                };
                let mut out = Outcome::refused(e, None);
                if let Err(e) = self.ledger.commit(&failed).await {
                    out.warnings.push(format!("failure not recorded: {e}"));
                }
                out.event_id = Some(event_id.to_owned());
                out
            }
        }
    }
}
