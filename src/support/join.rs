//! Awaiting several futures together without an executor's machinery (`join_all` from
//! `futures` brings its `FuturesOrdered` into the Worker upload).

use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::task::Poll;

/// Awaits every future of `futures` together; their outputs in order.
pub async fn join_each<F: Future>(futures: Vec<F>) -> Vec<F::Output> {
    let mut pending: Vec<Pin<Box<F>>> = futures.into_iter().map(Box::pin).collect();
    let mut out: Vec<Option<F::Output>> = pending.iter().map(|_| None).collect();
    poll_fn(|cx| {
        let mut done = true;
        for (slot, future) in out.iter_mut().zip(pending.iter_mut()) {
            if slot.is_none() {
                match future.as_mut().poll(cx) {
                    Poll::Ready(value) => *slot = Some(value),
                    Poll::Pending => done = false,
                }
            }
        }
        if done {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    })
    .await;
    out.into_iter().flatten().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_output_comes_back_in_order_each_polled_to_the_end() {
        let futures: Vec<_> = (0..5)
            .map(|n| async move {
                for _ in 0..n {
                    crate::support::join::tests::yield_once().await;
                }
                n * 10
            })
            .collect();
        let out = futures::executor::block_on(join_each(futures));
        assert_eq!(out, [0, 10, 20, 30, 40]);
    }

    /// Pending once, then ready (and wakes itself).
    pub(super) fn yield_once() -> impl Future<Output = ()> {
        let mut yielded = false;
        poll_fn(move |cx| {
            if yielded {
                Poll::Ready(())
            } else {
                yielded = true;
                cx.waker().wake_by_ref();
                Poll::Pending
            }
        })
    }
}
