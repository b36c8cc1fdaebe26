from django.urls import path

from apps.billing.api import views

urlpatterns = [
    path("balance", views.BalanceView.as_view(), name="balance"),
    path("wallet/transactions", views.TransactionsView.as_view(), name="wallet-transactions"),
    path("pricing", views.PricingView.as_view(), name="pricing"),
    path("sandbox/wallet", views.SandboxWalletView.as_view(), name="sandbox-wallet"),
]
