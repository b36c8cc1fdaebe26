"""Celery tasks for the media road. Inbound downloads run inside the receive road's own task
(apps.conversations.services.receiving.inbound_media_fetch calls media.media_download_inbound); outbound
uploads to Meta happen in the dispatcher on first use per number. Nothing is queued here on its own."""
