"""The admin site names the shop (its header, page titles and index heading)."""

from django.contrib import admin

admin.site.site_header = "shopcart administration"
admin.site.site_title = "shopcart admin"
admin.site.index_title = "Shop administration"
