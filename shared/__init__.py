"""Einblick's shared package: app factory, models, crypto, auth, audit, i18n."""
