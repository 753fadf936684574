"""Composition of the learned-model parts: what the router's ``create_app`` adds (the models it serves, the
learner when it learns in-process), and the learner's own application (``modelyard router learner``)."""

from __future__ import annotations

from faststream import FastStream
from pymongo import AsyncMongoClient

from modelyard_core.app import stream_app
from modelyard_core.bus import Bus
from modelyard_core.store import make_mongo
from modelyard_core.views import CompactedTopicView
from modelyard_events import RouterModelPublished

from .learned import LearnedRouter
from .learner import Learner
from .mongo import MongoCheckpoints, MongoModelFiles
from .published import ModelRegistry
from .settings import RouterSettings


def learned_models(settings: RouterSettings, bus: Bus, mongo: AsyncMongoClient, *, learn: bool
                   ) -> tuple[ModelRegistry, CompactedTopicView | None, Learner | None]:
    """The learned models this process serves (the configured file, and those published on ``router.models``),
    and with ``learn`` the online learner that improves them."""
    learning, topics = settings.router, settings.topics
    database = mongo[settings.admission_database_name]
    files = MongoModelFiles(database[learning.models_collection])
    configured = LearnedRouter.load(learning.model) if learning.model else None
    models = ModelRegistry(configured, files)
    model_view = (CompactedTopicView(settings, topics.name("router_models"), RouterModelPublished, name="router-models",
                                     on_change=models.on_change) if learning.follow_published or learn else None)
    learner = (Learner(learning, bus, models, files, MongoCheckpoints(database[learning.checkpoints_collection]),
                       topics.name("outcomes"), topics.name("shadows")) if learn else None)
    return models, model_view, learner


def create_learner_app(settings: RouterSettings | None = None) -> FastStream:
    """The online learner alone (``modelyard router learner``): one per deployment, beside router replicas that
    do not learn; it publishes what it learns on ``router.models``, which they follow."""
    settings = settings or RouterSettings()
    bus = Bus(settings, "router", client_id="modelyard-router-learner")
    mongo: AsyncMongoClient = make_mongo(settings.mongo, app_name="modelyard-router-learner")
    models, model_view, learner = learned_models(settings, bus, mongo, learn=True)
    assert model_view is not None and learner is not None
    return stream_app(settings, bus, startup=[model_view.start, models.settled, learner.start],
                      shutdown=[learner.stop, model_view.stop], mongo=mongo)
