-- orders_current: the nightly upkeep
OPTIMIZE "silt_shop"."orders_current__0f8ad59183e2b458" REWRITE DATA USING BIN_PACK;

VACUUM "silt_shop"."orders_current__0f8ad59183e2b458";

