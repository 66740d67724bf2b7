"""The front door: GET / says what this is and links to the docs, the browser pages and health."""

from pawmanity.core.plugins import Plugin


def register(app):
    from blueprints.home.routes import page

    app.register_blueprint(page)


plugin = Plugin(name="home", register=register)
