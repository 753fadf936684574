"""The router's online learner: it learns from what happened to its decisions (issue 16).

It reads ``queries.outcomes`` (and the shadow comparisons on ``queries.shadows``) and turns each into
labels for the two heads of a copy of the served model (``labels``, ``shadow_labels``):

- a query whose first answer came from the small model (the outcome carries its ``route``): the cascade
  escalated that answer → the small model failed (weight 1); it accepted it → the small model was right
  (a weaker label: ``accepted_weight``, because the cascade accepts some wrong answers); when escalated,
  the large model answered too, and the cascade's verdict on that answer is its label;
- a shadow comparison (a sampled accepted small answer also put to the large model): agreement is the
  small model's label (weight 1), and the large model is taken as right, with weight
  min(cap, 1 / the tenant's shadow share) so the large head sees such queries in their true proportion.

The copy has one extra feature per tenant (the per-tenant correction): a tenant whose traffic keeps
cascading moves its own bias, and the decisions' reasons say so. Every ``snapshot_interval_s`` the
learner publishes what it learned on ``router.models`` (``published.publish``), so every replica serves
it. State — weights, optimiser state, per-partition offset watermarks, recent event ids — is one
checkpoint document in MongoDB, written every ``checkpoint_every`` outcomes or ``checkpoint_interval_s``
and on shutdown, version-guarded (a second learner fails its next write and stops). The learner reads
without a consumer group: on start it seeks every partition to its watermark + 1, so an event is learned
once, whatever crashed when. When an operator publishes a new ``default`` model, the learner starts
again from it (keeping its watermarks).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import zlib
from dataclasses import dataclass
from typing import Protocol

from aiokafka import AIOKafkaConsumer, TopicPartition
from pydantic import ValidationError

from modelyard_core.bus import Bus
from modelyard_core.kafka_clients import make_consumer
from modelyard_events import ModelClass, QueryOutcome, ShadowCompared
from modelyard_learn import modelfile
from modelyard_learn.features import Query
from modelyard_learn.model import RouterModel
from modelyard_learn.online import OnlineLearner, Outcome

from .complexity import load_complexity_model
from .learned import LearnedRouter
from .published import DEFAULT, ModelFiles, ModelRegistry, publish
from .settings import LearnedRouting

log = logging.getLogger(__name__)


class Checkpoints(Protocol):
    """The learner's one checkpoint document (``mongo.MongoCheckpoints``)."""

    async def load(self) -> tuple[int, bytes] | None: ...

    async def save(self, body: bytes, version: int, expected: int | None, meta: dict) -> bool:
        """Store ``body`` as ``version`` if the stored version is still ``expected`` (None: none stored)."""
        ...


@dataclass(frozen=True, slots=True)
class Labels:
    slm_ok: bool | None
    llm_ok: bool | None
    small_weight: float = 1.0
    large_weight: float = 1.0


def labels(outcome: QueryOutcome, accepted_weight: float) -> Labels | None:
    """What one outcome says about the two models, or None when it says nothing (not routed to the small
    model first, or the small model's call failed instead of answering)."""
    steps = outcome.cascade
    if outcome.route is None or not steps or steps[0].model_class is not ModelClass.SLM or steps[0].error:
        return None
    escalated = steps[0].escalated or len(steps) > 1
    llm_ok = None
    if escalated and len(steps) > 1 and steps[1].error is None and steps[1].model_class is not ModelClass.SLM:
        llm_ok = not (steps[1].escalated or len(steps) > 2)
    return Labels(not escalated, llm_ok, 1.0 if escalated else accepted_weight)


def shadow_labels(compared: ShadowCompared, weight_cap: float) -> Labels:
    """A shadow comparison: agreement is the small model's label; the large model is the reference (right), weighed
    by 1 / the sampling share (capped) so its head sees sampled queries in their true proportion."""
    return Labels(compared.agreed, True, 1.0, min(weight_cap, 1.0 / compared.share))


def learning_copy(served: LearnedRouter, prior_n: float, tenant_value: float = 1.0) -> RouterModel:
    """A model of its own to learn in (the served one is never changed), with the per-tenant correction. Unless
    the file is a learner's own snapshot, its weights count as settled (``prior_n``): a tenant's new correction
    learns faster than the weights every tenant shares."""
    fresh = modelfile.from_json(served.doc)
    if "online" not in served.doc:
        for head in fresh.heads.values():
            head.settle(prior_n)
    return RouterModel(fresh.feature_set.with_tenant(tenant_value), fresh.heads)


class Learner:
    def __init__(self, settings: LearnedRouting, bus: Bus, registry: ModelRegistry, files: ModelFiles,
                 checkpoints: Checkpoints, outcomes_topic: str, shadows_topic: str | None = None) -> None:
        self.settings = settings
        self.bus = bus
        self.registry = registry
        self.files = files
        self.checkpoints = checkpoints
        self.topics = [outcomes_topic, *([shadows_topic] if shadows_topic else [])]
        self.shadows_topic = shadows_topic
        self.analyzer = load_complexity_model()
        self.online: OnlineLearner | None = None
        self.base: dict = {}  # the model the learner started from: its id, version, training, metrics, routing
        self.version: int | None = None
        self.consumer: AIOKafkaConsumer | None = None
        self.task: asyncio.Task | None = None
        self.stopped_reason: str | None = None
        self._since_checkpoint = 0
        self._since_snapshot = 0
        self._checkpointed_at = self._snapshot_at = time.monotonic()

    # -- life cycle ---------------------------------------------------------------------------------

    async def start(self) -> None:
        stored = await self.checkpoints.load()
        if stored is not None:
            self.version, body = stored
            doc = json.loads(zlib.decompress(body))
            self.online = OnlineLearner.restore(doc)
            self.base = doc["online"]["base"]
        elif not self._start_from(self.registry.for_tenant(None)):
            log.warning("router learner: no model to learn from (MODELYARD_ROUTER__MODEL or a published default); not learning")
            return
        self.consumer = make_consumer(self.bus.settings.kafka, client_id="modelyard-router-learner", group_id=None,
                                      enable_auto_commit=False, auto_offset_reset="latest")
        await self.consumer.start()
        await self._assign()
        if stored is None:
            await self.checkpoint()  # the starting offsets: a restart continues from them, not from the end
        self.task = asyncio.create_task(self._run(), name="router-learner")
        log.info("router learner started from %s; watermarks %s", self.base.get("label"), self.online.watermarks)

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            try:
                await self.task
            except asyncio.CancelledError:
                pass
        if self.online is not None and self.stopped_reason is None and self._since_checkpoint:
            await self.checkpoint()
        if self.consumer is not None:
            await self.consumer.stop()

    def _start_from(self, served: LearnedRouter | None, version: int = 0) -> bool:
        if served is None:
            return False
        kept = self.online
        self.online = OnlineLearner(learning_copy(served, self.settings.prior_n, self.settings.tenant_value))
        if kept is not None:  # a new base model: what was learned before goes, the offsets stay
            self.online.watermarks, self.online.recent, self.online._recent_set = kept.watermarks, kept.recent, kept._recent_set
        self.base = {"model_id": served.model_id, "label": served.label, "version": version,
                     **{k: served.doc.get(k, {}) for k in ("training", "metrics", "routing")}}
        return True

    async def _assign(self) -> None:
        assert self.consumer is not None and self.online is not None
        partitions = []
        for topic in self.topics:
            # Asking for partition 0's end makes the client fetch the topic's metadata (and wait for a topic
            # created a moment ago); then every partition of it is known.
            await self.consumer.end_offsets([TopicPartition(topic, 0)])
            partitions += [TopicPartition(topic, p) for p in sorted(self.consumer.partitions_for_topic(topic) or {0})]
        self.consumer.assign(partitions)
        for tp in partitions:
            mark = self.online.watermarks.get(f"{tp.topic}/{tp.partition}")
            if mark is None:  # first start: from now on, and a restart continues from here (not from its end)
                await self.consumer.seek_to_end(tp)
                self.online.watermarks[f"{tp.topic}/{tp.partition}"] = await self.consumer.position(tp) - 1
            else:
                self.consumer.seek(tp, mark + 1)

    # -- the loop ------------------------------------------------------------------------------------

    async def _run(self) -> None:
        assert self.consumer is not None
        while True:
            try:
                batches = await self.consumer.getmany(timeout_ms=200, max_records=500)
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - keep learning through broker restarts
                log.warning("router learner: fetch failed, retrying", exc_info=True)
                await asyncio.sleep(1.0)
                continue
            for tp, records in batches.items():
                for record in records:
                    self.learn(tp.topic, tp.partition, record.offset, record.value)
                await asyncio.sleep(0)
            try:
                await self._adopt_published_base()
                await self._housekeeping()
            except Exception:  # noqa: BLE001 - the database or the broker is away: try again after the next fetch
                log.warning("router learner: checkpoint or snapshot failed, retrying", exc_info=True)
                await asyncio.sleep(1.0)
            if self.stopped_reason is not None:
                return

    def learn(self, topic: str, partition: int, offset: int, value: bytes | None) -> bool:
        """Apply one record (True if it taught the model something)."""
        assert self.online is not None
        source = f"{topic}/{partition}"
        found = self._decode(topic, value)
        if found is None:
            self.online.advance(source, offset)
            return False
        context, tenant, event_id, said = found
        analysis = self.analyzer.analyze(context.text, user_role=context.user_role, history_turns=context.history_turns,
                                         agent_type=context.agent_type)
        query = Query(context.text, user_role=context.user_role, agent_type=context.agent_type,
                      history_turns=context.history_turns, factors=analysis.factors, tenant=tenant)
        features = self.online.model.featurizer.features(query)
        applied = self.online.apply(Outcome(source, offset, features, said.slm_ok, said.llm_ok, said.small_weight,
                                            said.large_weight, tenant=tenant, event_id=event_id))
        if applied:
            self._since_checkpoint += 1
            self._since_snapshot += 1
        return applied

    def _decode(self, topic: str, value: bytes | None):
        if value is None:
            return None
        try:
            if topic == self.shadows_topic:
                compared = ShadowCompared.model_validate_json(value)
                return (compared.route, compared.tenant_id, compared.event_id,
                        shadow_labels(compared, self.settings.shadow_weight_cap))
            outcome = QueryOutcome.model_validate_json(value)
        except ValidationError:
            return None  # not ours to dead-letter: its producer validated it
        said = labels(outcome, self.settings.accepted_weight)
        if said is None or outcome.route is None:
            return None
        return outcome.route, outcome.tenant_id, outcome.event_id, said

    async def _adopt_published_base(self) -> None:
        event = self.registry.events.get(DEFAULT)
        if (event is None or event.source != "operator" or event.model_id == self.base.get("model_id")
                or event.version <= self.base.get("version", 0)):
            return
        served = self.registry.published.get(DEFAULT)
        if served is not None and served.model_id == event.model_id and self._start_from(served, event.version):
            log.info("router learner: the operator published %s; learning from it now", served.label)
            self._since_snapshot = 0
            await self.checkpoint()

    async def _housekeeping(self) -> None:
        assert self.online is not None
        now = time.monotonic()
        if self._since_checkpoint >= self.settings.checkpoint_every or (
                self._since_checkpoint and now - self._checkpointed_at >= self.settings.checkpoint_interval_s):
            self.online.prune(self.settings.max_coordinates)
            await self.checkpoint()
        if self._since_snapshot and now - self._snapshot_at >= self.settings.snapshot_interval_s:
            await self.snapshot()

    async def checkpoint(self) -> None:
        assert self.online is not None
        doc = self.online.checkpoint(training=self.base.get("training"), metrics=self.base.get("metrics"),
                                     routing=self.base.get("routing"))
        doc["online"]["base"] = self.base
        body = await asyncio.to_thread(lambda: zlib.compress(json.dumps(doc, separators=(",", ":")).encode(), 6))
        version = (self.version or 0) + 1
        meta = {"watermarks": self.online.watermarks, "applied": self.online.applied, "base": self.base.get("label")}
        if not await self.checkpoints.save(body, version, self.version, meta):
            self.stopped_reason = "another learner wrote the checkpoint: this one stops learning"
            log.error("router learner: %s", self.stopped_reason)
            return
        self.version = version
        self._since_checkpoint = 0
        self._checkpointed_at = time.monotonic()

    async def snapshot(self) -> None:
        """Publish what was learned: every replica serves it."""
        assert self.online is not None
        doc = self.online.snapshot(training=self.base.get("training"), metrics=self.base.get("metrics"),
                                   routing=self.base.get("routing"))
        await publish(self.bus, self.files, doc, name=DEFAULT, source="learner", base_model_id=self.base.get("model_id"),
                      description=f"learned online from {self.online.applied} outcomes, starting from {self.base.get('label')}")
        self._since_snapshot = 0
        self._snapshot_at = time.monotonic()
