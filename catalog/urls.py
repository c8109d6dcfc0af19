from django.urls import path

from catalog import views

app_name = "catalog"

urlpatterns = [
    path("", views.product_list, name="product_list"),
    path("search", views.product_list, name="search"),
    path("products/<str:product_id>", views.product_detail, name="product_detail"),
    path("products/<str:product_id>/image", views.product_image, name="product_image"),
]
