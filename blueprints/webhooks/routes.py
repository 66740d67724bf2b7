from blueprints.webhooks.schemas import (
    DeliveryOut,
    DeliveryQuery,
    EndpointCreatedOut,
    EndpointIn,
    EndpointOut,
    EndpointUpdateIn,
)
from pawmanity.core.api import API_PREFIX, Blueprint
from pawmanity.core.database import paginate
from pawmanity.core.schemas import PageQuery, page_of
from pawmanity.identity.security import current_actor
from pawmanity.webhooks import endpoints

blp = Blueprint("webhooks", __name__, url_prefix=f"{API_PREFIX}/admin/webhooks",
                description="Outbound webhooks (admins only): Standard Webhooks signatures, retries, delivery log")


@blp.route("", methods=["POST"])
@blp.auth_required("admin")
@blp.arguments(EndpointIn)
@blp.response(201, EndpointCreatedOut)
@blp.errors(415)
def create_endpoint(data):
    """Register an endpoint. The response carries its signing secret, shown this once."""
    return endpoints.create(current_actor(), **data)


@blp.route("", methods=["GET"])
@blp.auth_required("admin")
@blp.arguments(PageQuery, location="query")
@blp.response(200, page_of(EndpointOut))
def list_endpoints(query):
    return paginate(endpoints.list_query(), page=query["page"], per_page=query["per_page"])


@blp.route("/<uuid:endpoint_id>", methods=["GET"])
@blp.auth_required("admin")
@blp.response(200, EndpointOut)
@blp.errors(404)
def get_endpoint(endpoint_id):
    return endpoints.get(endpoint_id)


@blp.route("/<uuid:endpoint_id>", methods=["PATCH"])
@blp.auth_required("admin")
@blp.arguments(EndpointUpdateIn)
@blp.response(200, EndpointOut)
@blp.errors(404, 415)
def update_endpoint(changes, endpoint_id):
    """Change the URL, events or description; `active: true` re-enables a disabled endpoint."""
    return endpoints.update(current_actor(), endpoint_id, changes)


@blp.route("/<uuid:endpoint_id>", methods=["DELETE"])
@blp.auth_required("admin")
@blp.response(204)
@blp.errors(404)
def delete_endpoint(endpoint_id):
    endpoints.delete(current_actor(), endpoint_id)


@blp.route("/<uuid:endpoint_id>/deliveries", methods=["GET"])
@blp.auth_required("admin")
@blp.arguments(DeliveryQuery, location="query")
@blp.response(200, page_of(DeliveryOut))
@blp.errors(404)
def list_deliveries(query, endpoint_id):
    """The delivery log, newest first, with every attempt."""
    return paginate(endpoints.deliveries_query(endpoint_id, status=query.get("status")), page=query["page"],
                    per_page=query["per_page"])


@blp.route("/<uuid:endpoint_id>/deliveries/<uuid:delivery_id>/replay", methods=["POST"])
@blp.auth_required("admin")
@blp.response(202, DeliveryOut)
@blp.errors(404)
def replay_delivery(endpoint_id, delivery_id):
    """Send a delivery again with the same webhook-id (receivers de-duplicate by it)."""
    return endpoints.replay(current_actor(), endpoint_id, delivery_id)
