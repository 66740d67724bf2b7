"""Celery tasks of the conversations domain."""

from celery import shared_task

from pawmanity.conversations import messaging, video


@shared_task(name="pawmanity.conversations.tasks.send_message_digests")
def send_message_digests():
    return messaging.send_digests()


@shared_task(name="pawmanity.conversations.tasks.end_expired_video_sessions")
def end_expired_video_sessions():
    return video.end_expired()
